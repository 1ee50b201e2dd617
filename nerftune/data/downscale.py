"""A dataset at 1/N of its size (`data: {path: ..., downscale: N}`), as nerfstudio's `downscale_factor` and the
images_N/ folders of ns-process-data: structure from motion ran on the full frames, and trials train and score on
smaller ones. Scoring the whole test set is what a trial on the CPU spends most of its time on, and it scales with
the pixels (`evaluation_cost.py`).

The copy is kept in the storage folder's _datasets/, one per source folder and factor, and made again when a file of
the source changes (its size or modification time). Photos are averaged over each N x N block; masks, segmentations
and depths keep their nearest pixel's value. Intrinsics scale with the images; poses, the point of interest, the crop
and the document's corners are in the world and stay as they are.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path

from PIL import Image

from nerftune.data.dataset import PATH_KEYS, Dataset

SOURCE_FILE = "downscaled_from.json"  # in the copy: its source, factor and the source files' sizes and times
KEPT = ("split_indices.json",)  # copied as they are: the fixed test set stays the same frames
SCALED_X, SCALED_Y = ("fl_x", "cx"), ("fl_y", "cy")


def downscaled(source: Dataset, factor: int, folder: Path) -> Path:
    """The copy of `source` at 1/`factor` of its size in `folder` (made, or made again, where needed)."""
    out = folder / f"{source.root.name}-{_digest(str(source.root.resolve()))[:8]}-x{factor}"
    made_from = {"source": str(source.root.resolve()), "factor": factor, "files": _file_stamps(source)}
    if _is_current(out, made_from):
        return out
    building = out.with_name(f"{out.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    transforms = json.loads((source.root / "transforms.json").read_text())
    shared = {key: transforms[key] for key in ("w", "h") if key in transforms}  # before they are scaled
    _scale_camera(transforms, shared, factor)
    for index, frame in enumerate(transforms["frames"]):
        _scale_camera(frame, {**shared, **frame}, factor)
        for key in (key for key in PATH_KEYS if key in frame):
            photo = key == "file_path"
            frame[key] = _downscaled_image(source.root, frame[key], building, index, factor, smooth=photo)
    if "ply_file_path" in transforms:  # points in the world: the source's file
        transforms["ply_file_path"] = str((source.root / transforms["ply_file_path"]).resolve())
    (building / "transforms.json").write_text(json.dumps(transforms, indent=1))
    for name in KEPT:
        if (source.root / name).is_file():
            shutil.copy2(source.root / name, building / name)
    (building / SOURCE_FILE).write_text(json.dumps(made_from))
    if _is_current(out, made_from):  # another sweep made it meanwhile, and may be reading it
        shutil.rmtree(building)
        return out
    shutil.rmtree(out, ignore_errors=True)
    building.rename(out)
    return out


def _is_current(copy: Path, made_from: dict) -> bool:
    try:
        return json.loads((copy / SOURCE_FILE).read_text()) == made_from
    except (OSError, ValueError):
        return False


def factor_to_fit(current: int, amount: float, limit: float) -> int:
    """The `downscale` that brings `amount`, which grows with the pixels and is that much at `current`, within
    `limit` (test rays to render, memory for training images)."""
    return math.ceil(current * math.sqrt(amount / limit))


def _scale_camera(camera: dict, size: dict, factor: int) -> None:
    """Scale the intrinsics `camera` (a frame, or the file's top) holds to the image size `_downscaled_image` writes;
    `size`: the w and h its images have (its own, or the file's)."""
    for axis, keys in (("w", SCALED_X), ("h", SCALED_Y)):
        if axis not in size:
            continue
        smaller = _smaller(size[axis], factor)
        for key in keys:
            if key in camera:
                camera[key] *= smaller / size[axis]
        if axis in camera:
            camera[axis] = smaller


def _smaller(size: int, factor: int) -> int:
    return max(1, round(size / factor))


def _downscaled_image(root: Path, path: str, out: Path, index: int, factor: int, smooth: bool) -> str:
    """Write the image at `path` (relative to `root`, or absolute) downscaled into `out`; returns its path there."""
    relative = Path(path) if not Path(path).is_absolute() else Path("outside") / str(index) / Path(path).name
    target = out / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(root / path) as image:
        size = (_smaller(image.width, factor), _smaller(image.height, factor))
        smaller = image.resize(size, Image.Resampling.BOX if smooth else Image.Resampling.NEAREST)
        smaller.save(target, **({"quality": 95} if target.suffix.lower() in (".jpg", ".jpeg") else {}))
    return relative.as_posix()


def _file_stamps(source: Dataset) -> dict[str, list[int]]:
    """Each file the copy is made from: its size and modification time (ns)."""
    files = [source.root / "transforms.json", *(source.root / name for name in KEPT)]
    files += [source.root / frame[key] for frame in source.frames for key in PATH_KEYS if key in frame]
    stamps = {}
    for path in files:
        if path.is_file():
            stat = path.stat()
            stamps[str(path)] = [stat.st_size, stat.st_mtime_ns]
    return stamps


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()
