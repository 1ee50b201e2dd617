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
from dataclasses import dataclass, field
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
    cameras: dict[str, dict] = field(default_factory=dict)  # registered frame -> its lens's, where several lenses

    @property
    def registered(self) -> list[str]:
        return [name for name in self.frames if name in self.poses]

    def view_changes(self) -> dict[str, dict]:
        """The registered frames' new poses and the subset's camera (each frame its lens's), for `write_view`."""
        return {name: {"transform_matrix": pose, **self.intrinsics(name)} for name, pose in self.poses.items()}

    def intrinsics(self, name: str) -> dict:
        """The intrinsics the subset's SfM found for frame `name`'s lens (nerfstudio keys)."""
        return {k: v for k, v in self.cameras.get(name, self.camera).items() if k in INTRINSIC_KEYS}

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
    from `nerftune prepare`, `ns-process-data` (a colmap/ folder) or the synthetic scene, of one camera per lens."""
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
    lenses = len(set(_lens_of(dataset).values()))
    if lenses > len(dataset.frames) // 2:
        raise InputError(
            source,
            "space.poses",
            f"per_subset maps each lens as one camera, and {root} gives its {len(dataset.frames)} frames "
            f"{lenses} different intrinsics (a camera per frame, not per lens)",
            "use poses: global for this dataset",
        )


def solve(dataset: Dataset, train_indices: list[int], work_dir: Path) -> SubsetPoses:
    """SfM on the training frames alone, aligned to the global poses (cached in `work_dir`)."""
    cached = work_dir / RESULT_FILE
    if cached.is_file():
        return SubsetPoses(**json.loads(cached.read_text()))
    from nerftune.data.sfm_choice import SfmOptions, reconstruct

    names = [dataset.frames[i]["file_path"] for i in train_indices]
    options = SfmOptions("exhaustive", recovery_seconds=RECOVERY_SECONDS, lenses=_sfm_lenses(dataset, names))
    outcome = reconstruct(dataset.root, names, work_dir / "sfm", options)
    found = outcome.reconstruction
    registered = found.registered
    global_poses = dict(zip(dataset.frame_names, dataset.poses))
    poses, error = {}, None
    if len(registered) >= 2:
        fit = similarity([found.poses[n] for n in registered], [global_poses[n] for n in registered])
        poses = {n: fit.apply(found.poses[n]).tolist() for n in registered}
        error = _error(found.poses, global_poses, registered).to_json()
    cameras = {name: found.frame_cameras[name] for name in poses if name in found.frame_cameras}
    result = SubsetPoses(names, poses, found.camera, error, sum(outcome.seconds.values()), cameras)
    cached.write_text(json.dumps(result.__dict__))
    return result


def _lens_of(dataset: Dataset) -> dict[str, tuple]:
    """Each frame's lens, told by its intrinsics (a capture of several lenses gives each frame its lens's)."""
    shared = {k: v for k, v in dataset.transforms.items() if k in INTRINSIC_KEYS}
    return {
        frame["file_path"]: tuple(sorted({**shared, **{k: frame[k] for k in INTRINSIC_KEYS if k in frame}}.items()))
        for frame in dataset.frames
    }


def _sfm_lenses(dataset: Dataset, names: list[str]) -> tuple:
    """The subset's frames by lens, for SfM: one camera each, found afresh (no prior, as for one lens)."""
    from nerftune.data.sfm import Lens

    lens_of = _lens_of(dataset)
    lenses = dict.fromkeys(lens_of[name] for name in names)  # in the order the frames come: the same every run
    return tuple(Lens(tuple(name for name in names if lens_of[name] == lens)) for lens in lenses)


def _error(found: dict, global_poses: dict, registered: list[str]) -> PoseError:
    """Pose error against the global solution, relative to the extent of *all* the capture's cameras (a subset's
    own extent shrinks with its frame count)."""
    centres = np.array([pose[:3, 3] for pose in global_poses.values()])
    size = float(np.linalg.norm(centres.max(0) - centres.min(0)))
    return pose_error([found[n] for n in registered], [global_poses[n] for n in registered], size)
