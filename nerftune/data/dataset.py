"""A nerfstudio dataset folder: validation, the sweep's fixed test split, and per-trial dataset views.

The sequence order is the frames sorted by file name, as nerfstudio's own dataparser orders them. A view is a
generated `transforms.json` that lists *all* frames (so nerfstudio normalises the poses identically for every
subset) with explicit `train_filenames` / `val_filenames` / `test_filenames`; its val split is the test set, which
is what nerfstudio evaluates during training.
"""

from __future__ import annotations

import json
import math
import shlex
import socket
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from nerftune.data.fingerprint import combined, frame_digests
from nerftune.data.frames import interval_test_indices, resolve_frame_count, select_subset, train_pool
from nerftune.errors import InputError

SPLIT_FILE = "split_indices.json"
PATH_KEYS = ("file_path", "mask_path", "depth_file_path", "document_mask_path", "segmentation_path")
# camera keys nerfstudio reads from the top of transforms.json, or from each frame where the top has none
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "k1", "k2", "k3", "k4", "p1", "p2")


PREPARE_REPORT = "prepare_report.json"  # what `nerftune prepare` did to make a dataset, in its folder


@dataclass(frozen=True)
class Dataset:
    root: Path
    transforms: dict[str, Any]
    frames: list[dict[str, Any]]  # in sequence order
    test_indices: list[int]
    pool: list[int]  # the frames trials may train on

    @property
    def frame_names(self) -> list[str]:
        return [frame["file_path"] for frame in self.frames]

    @property
    def poses(self) -> np.ndarray:
        """Every frame's camera-to-world matrix (N, 4, 4), in sequence order."""
        return np.stack([pose_matrix(frame) for frame in self.frames])

    @property
    def test_names(self) -> list[str]:
        return [self.frames[i]["file_path"] for i in self.test_indices]

    def names_by_path(self, names: list[str]) -> dict[str, str]:
        """`names` (frame file paths as transforms.json has them) keyed by the resolved path of their image: how
        nerfstudio names an image it loaded."""
        return {str((self.root / name).resolve()): name for name in names}

    @cached_property
    def frame_digests(self) -> dict[str, str]:
        """Each frame's content (its files' bytes, pose, intrinsics and shared fields) as a digest, by name."""
        return frame_digests(self.root, self.frames, self.transforms)

    @property
    def test_hash(self) -> str:
        """The fixed test set's fingerprint: its frames' images and cameras, not only their names."""
        return combined({name: self.frame_digests[name] for name in self.test_names})

    @property
    def data_hash(self) -> str:
        """The fingerprint of every frame, test and training: what two sweeps must share to have trained alike."""
        return combined(self.frame_digests)

    @property
    def main_camera(self) -> dict[str, Any]:
        """The intrinsics of the lens most frames were taken with: what novel views are rendered with. Shared ones
        win over a frame's own, as nerfstudio reads them; a capture of several lenses has only per-frame ones."""
        cameras = [{k: v for k, v in {**f, **self.transforms}.items() if k in INTRINSIC_KEYS} for f in self.frames]
        counts = Counter(json.dumps(camera, sort_keys=True) for camera in cameras)
        return json.loads(counts.most_common(1)[0][0])

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the main camera's images."""
        return int(self.main_camera.get("w", 0)), int(self.main_camera.get("h", 0))

    def train_indices(self, frames: int | float, subset: int = 0) -> list[int]:
        """The training frames of a trial with this `frames` value and `frame_subset` (0: evenly spaced, first and
        last of the pool; see `frames.select_subset`)."""
        return select_subset(self.pool, resolve_frame_count(frames, len(self.pool)), subset)


def load_dataset(root: str | Path, test_every: int = 8, check_images: bool = True) -> Dataset:
    """Read and check a nerfstudio dataset folder; raises `InputError` naming the file and the problem."""
    root = Path(root)
    transforms_path = root / "transforms.json"
    if not root.is_dir():
        raise InputError(
            root,
            "data",
            "dataset folder does not exist",
            f"make it from a phone video: `nerftune prepare VIDEO --out {shlex.quote(str(root))}`; or point `data` at "
            "a nerfstudio dataset folder, with its transforms.json",
        )
    if not transforms_path.is_file():
        raise InputError(
            transforms_path, "", "missing", "run `nerftune prepare` or point `data` at a nerfstudio folder"
        )
    try:
        transforms = json.loads(transforms_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(transforms_path, "", f"unreadable JSON: {error}", "fix or regenerate the file") from None
    frames = transforms.get("frames") if isinstance(transforms, dict) else None
    if not frames or not isinstance(frames, list):
        raise InputError(transforms_path, "frames", "no frames listed", "a nerfstudio transforms.json lists `frames`")
    _check_frames(transforms_path, transforms, frames, check_images)
    frames = sorted(frames, key=lambda frame: frame["file_path"])
    test, pool = _split(root, len(frames), test_every)
    return Dataset(root=root, transforms=transforms, frames=frames, test_indices=test, pool=pool)


def require_content(dataset: Dataset, data_hash: str) -> None:
    """Go on only with the data a sweep started with: not a node's own stale copy at the shared path, nor a capture
    prepared into the folder while the sweep ran (it names its frames as before)."""
    if dataset.data_hash != data_hash:
        raise RuntimeError(
            f"{dataset.root} on {socket.gethostname()} is not the data the sweep started with (data hash "
            f"{dataset.data_hash}, not {data_hash}): every node must see the same files at that path"
        )


def _check_frames(source: Path, transforms: dict, frames: list, check_images: bool) -> None:
    seen: set[str] = set()
    for index, frame in enumerate(frames):
        field = f"frames[{index}]"
        if not isinstance(frame, dict) or "file_path" not in frame:
            raise InputError(source, field, "frame without `file_path`", "every frame names its image")
        name = frame["file_path"]
        if name in seen:
            raise InputError(source, f"{field}.file_path", f"{name!r} is listed twice", "remove the duplicate frame")
        seen.add(name)
        matrix = frame.get("transform_matrix")
        if not _is_pose(matrix):
            raise InputError(
                source, f"{field}.transform_matrix", "missing or not a finite 4x4 pose", "re-run the pose estimation"
            )
        for key in ("fl_x", "fl_y", "w", "h"):
            if key not in frame and key not in transforms:
                raise InputError(source, key, "camera intrinsics missing", "add fl_x, fl_y, cx, cy, w, h")
        if check_images:
            _check_image(source, field, source.parent / name)


def pose_matrix(frame: dict[str, Any]) -> np.ndarray:
    """A frame's `transform_matrix` as a 4x4 array (nerfstudio accepts the 3x4 top too)."""
    return np.vstack([np.asarray(frame["transform_matrix"], float)[:3], [0.0, 0.0, 0.0, 1.0]])


def _is_pose(matrix: Any) -> bool:
    try:
        rows = [[float(v) for v in row] for row in matrix]
    except (TypeError, ValueError):
        return False
    return len(rows) in (3, 4) and all(len(row) == 4 and all(map(math.isfinite, row)) for row in rows)


def _check_image(source: Path, field: str, path: Path) -> None:
    if not path.is_file():
        raise InputError(source, f"{field}.file_path", f"image {path} does not exist", "fix the path or the folder")
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as error:  # PIL raises many types for broken files
        raise InputError(path, "", f"unreadable image ({error})", "replace or remove this frame") from None


def _split(root: Path, num_frames: int, test_every: int) -> tuple[list[int], list[int]]:
    split_path = root / SPLIT_FILE
    if not split_path.exists():
        test = interval_test_indices(num_frames, test_every)
        pool = train_pool(num_frames, test)
    else:
        test, pool = _read_split_file(split_path, num_frames)
    if not test:
        raise InputError(
            root, "test set", "would be empty", f"the dataset needs more than one frame, or a {SPLIT_FILE}"
        )
    if not pool:
        raise InputError(root, "training pool", "is empty: every frame is a test frame", "use more frames")
    return test, pool


def _read_split_file(path: Path, num_frames: int) -> tuple[list[int], list[int]]:
    try:
        split = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(path, "", f"unreadable JSON: {error}", "fix the file") from None
    lists = {}
    for key in ("train", "test"):
        values = split.get(key) if isinstance(split, dict) else None
        if not isinstance(values, list) or not all(isinstance(i, int) and 0 <= i < num_frames for i in values):
            raise InputError(path, key, f"must be a list of frame indices in [0, {num_frames})", "fix the list")
        lists[key] = sorted(set(values))
    if set(lists["train"]) & set(lists["test"]):
        raise InputError(path, "test", "shares frames with train", "a test frame must never be trained on")
    return lists["test"], lists["train"]


def write_view(
    dataset: Dataset,
    train_indices: Sequence[int],
    out_dir: Path,
    changes: dict[str, dict] | None = None,
    masks: bool | None = None,
) -> Path:
    """Write a trial's dataset view (all frames, explicit splits, absolute paths) into `out_dir`; returns it.

    `changes` gives frames (by `file_path`) another pose or camera; the shared intrinsics then move into every
    frame, since nerfstudio ignores a frame's own where the file has shared ones. `masks` true gives every frame
    its mask as `mask_path` (nerfstudio then trains only on the pixels the mask keeps), false leaves masks out,
    None keeps the data's own choice."""
    out_dir.mkdir(parents=True, exist_ok=True)
    view = {k: v for k, v in dataset.transforms.items() if k != "frames"}
    frames = [_absolute(_with_masks(dict(frame), masks), dataset.root) for frame in dataset.frames]
    if changes:  # their paths are absolute, or relative to the view
        shared = {k: view.pop(k) for k in INTRINSIC_KEYS if k in view}
        frames = [{**shared, **frame, **changes.get(name, {})} for name, frame in zip(dataset.frame_names, frames)]
    if "ply_file_path" in view:
        view["ply_file_path"] = str((dataset.root / view["ply_file_path"]).resolve())
    view["frames"] = frames
    train = [frames[i]["file_path"] for i in train_indices]
    test = [frames[i]["file_path"] for i in dataset.test_indices]
    view.update(train_filenames=train, val_filenames=test, test_filenames=test)
    target = out_dir / "transforms.json"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(view, indent=1))
    tmp.replace(target)
    return out_dir


def mask_of(frame: dict) -> str | None:
    """A frame's mask: its training mask, else its document mask (the synthetic scene's)."""
    return frame.get("mask_path") or frame.get("document_mask_path")


def _with_masks(frame: dict, masks: bool | None) -> dict:
    if masks is True:
        frame["mask_path"] = mask_of(frame)
    elif masks is False:
        frame.pop("mask_path", None)
    return frame


def _absolute(frame: dict, root: Path) -> dict:
    return {k: str((root / v).resolve()) if k in PATH_KEYS else v for k, v in frame.items()}
