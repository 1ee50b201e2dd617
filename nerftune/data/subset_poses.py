"""Poses from a trial's own frames (`poses: per_subset`): SfM as a researcher with only those frames would run it.

A frame-count study normally takes every trial's poses from SfM on all frames (`poses: global`), which hides what a
small capture does to SfM. `per_subset` re-runs SfM (features, exhaustive matching, the same camera-model choice and
recovery as `nerftune prepare`) on the trial's training frames alone, then carries the result into the dataset's
frame with the similarity that best fits those frames' global poses, so that the fixed test set keeps its global
poses and every trial is still scored on the same views. Frames SfM could not register are left out of training.
The trial records how many frames registered and how far the subset's poses are from the global ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nerftune.data.align import PoseError, pose_error, similarity
from nerftune.data.dataset import INTRINSIC_KEYS, PREPARE_REPORT, Dataset
from nerftune.errors import InputError

POSES = ("global", "per_subset")
RESULT_FILE = "subset_poses.json"  # in the trial's folder: a retried trial does not run SfM again
RECOVERY_SECONDS = 120.0


@dataclass(frozen=True)
class SubsetPoses:
    frames: list[str]  # the trial's training frames (file_path), as asked
    poses: dict[str, list]  # registered frame -> camera-to-world in the dataset's frame
    camera: dict  # the subset's own intrinsics (nerfstudio keys)
    error: dict | None  # PoseError against the global poses, as JSON (None under 2 registered frames)
    seconds: float

    @property
    def registered(self) -> list[str]:
        return [name for name in self.frames if name in self.poses]

    def view_changes(self) -> dict[str, dict]:
        """The registered frames' new poses and the subset's camera, for `write_view`."""
        camera = {k: v for k, v in self.camera.items() if k in INTRINSIC_KEYS}
        return {name: {"transform_matrix": pose, **camera} for name, pose in self.poses.items()}

    def record(self) -> dict:
        """What results.csv and MLflow keep of it."""
        error = self.error or {}
        return {
            "sfm_frames": len(self.frames),
            "sfm_registered": len(self.registered),
            "pose_error_position": error.get("max_position"),
            "pose_error_rotation_deg": error.get("max_rotation_deg"),
            "sfm_s": round(self.seconds, 3),
        }


def check_original_frames(dataset: Dataset, source: str | Path) -> None:
    """Refuse `per_subset` where the dataset's images are not a capture's frames that SfM can run on again: data
    from `nerftune prepare`, `ns-process-data` (a colmap/ folder) or the synthetic scene, with one camera."""
    root = dataset.root
    synthetic = str(dataset.transforms.get("nerftune", {}).get("source", "")).startswith("synthetic:")
    if not (synthetic or (root / PREPARE_REPORT).is_file() or (root / "colmap").is_dir()):
        raise InputError(
            source,
            "space.poses",
            f"per_subset re-runs SfM on the capture's original frames, and {root} does not hold them (no "
            f"{PREPARE_REPORT} from nerftune prepare, no colmap/ from ns-process-data)",
            "prepare the capture with `nerftune prepare`, or use poses: global",
        )
    per_frame = [key for key in ("fl_x", "w", "h") if any(key in frame for frame in dataset.frames)]
    if per_frame:
        raise InputError(
            source,
            "space.poses",
            f"per_subset needs frames of one camera, and {root} gives frames their own `{per_frame[0]}`",
            "use poses: global for this dataset",
        )


def solve(dataset: Dataset, train_indices: list[int], work_dir: Path) -> SubsetPoses:
    """SfM on the training frames alone, aligned to the global poses (cached in `work_dir`)."""
    cached = work_dir / RESULT_FILE
    if cached.is_file():
        return SubsetPoses(**json.loads(cached.read_text()))
    from nerftune.data.sfm_choice import SfmOptions, reconstruct

    names = [dataset.frames[i]["file_path"] for i in train_indices]
    outcome = reconstruct(
        dataset.root, names, work_dir / "sfm", SfmOptions("exhaustive", recovery_seconds=RECOVERY_SECONDS)
    )
    found = outcome.reconstruction
    registered = found.registered
    global_poses = dict(zip(dataset.frame_names, dataset.poses))
    poses, error = {}, None
    if len(registered) >= 2:
        fit = similarity([found.poses[n] for n in registered], [global_poses[n] for n in registered])
        poses = {n: fit.apply(found.poses[n]).tolist() for n in registered}
        error = _error(found.poses, global_poses, registered).to_json()
    result = SubsetPoses(names, poses, found.camera, error, sum(outcome.seconds.values()))
    cached.write_text(json.dumps(result.__dict__))
    return result


def _error(found: dict, global_poses: dict, registered: list[str]) -> PoseError:
    """Pose error against the global solution, relative to the extent of *all* the capture's cameras (a subset's
    own extent shrinks with its frame count)."""
    centres = np.array([pose[:3, 3] for pose in global_poses.values()])
    size = float(np.linalg.norm(centres.max(0) - centres.min(0)))
    return pose_error([found[n] for n in registered], [global_poses[n] for n in registered], size)
