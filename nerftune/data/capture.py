"""The frames of a capture: read from a video (`nerftune.data.video`) or a folder of photos
(`nerftune.data.photos`), upright as players and viewers show them, picked, downscaled, with their masks.

Masks follow COLMAP's convention: white = use this pixel, black = ignore it (no features there, and nerfstudio
ignores it in training). A folder's masks are matched by file name (`img.jpg` <- `img.png`, `img.jpg.png` or
`img.jpg`); a video's masks are one image per video frame, in name order. Masks must have their upright frame's shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from PIL import Image

from nerftune.data import video
from nerftune.data.frames import select_evenly
from nerftune.data.photos import IMAGE_SUFFIXES, folder_orientation, folder_photos, open_image
from nerftune.data.sharpest import Picking, image_sharpness, windows
from nerftune.errors import InputError

SHAPE_TOLERANCE = 0.02  # relative difference of width/height ratios between a mask and its frame (rounding)


@dataclass(frozen=True)
class Selection:
    """Which frames to keep: `count` evenly over the capture, or `fps` per second of video; neither keeps all.
    `sharpest`: of the frames around each of those, the sharpest (`nerftune.data.sharpest`); else exactly those."""

    count: int | None = None
    fps: float | None = None
    max_size: int | None = None  # longest side in pixels after downscaling
    sharpest: bool = True


@dataclass(frozen=True)
class Frame:
    source: str  # what the user knows it as: the image's file name, or "video frame N"
    image: Image.Image
    mask: Image.Image | None  # "L" mode, same size as image


@dataclass(frozen=True)
class Capture:
    count: int  # how many frames are selected
    frames: Iterator[Frame]  # one at a time, in order (a long 4K video would not fit in memory at once)
    orientation: str  # how the frames were turned upright, for the report
    colour: str  # how the frames' colours were converted, for the report
    picking: Picking | None  # where the sharpest frame of each window is kept; None where no frame is left out
    total: int  # frames in the capture

    def picked(self) -> str:
        """How the frames were picked, for the report (once they have all been read)."""
        if self.picking is None:
            return f"all {self.total} frames"
        how = self.picking.describe() if len(self.picking.candidates) > self.count else "evenly spaced"
        return f"{self.count} of {self.total} frames, {how}"


def read_frames(source: Path, selection: Selection, mask_dir: Path | None = None) -> Capture:
    """The selected frames of a video or folder, upright. The input is checked before the first frame is read;
    raises `InputError` for bad input."""
    source = Path(source)
    if not source.exists():
        raise InputError(source, "INPUT", "does not exist", "give a video file or a folder of images")
    if video.is_video(source):
        total = video.frame_count(source)
        picking = _picking(_pick(total, selection, video.frame_rate(source)), total, selection.sharpest)
        decoded = ((i, f"video frame {i}", frame) for i, frame in video.decode(source, picking.candidates))
        kept = picking.keep_sharpest(decoded, video.frame_sharpness)
        images = ((i, name, video.shown_image(frame, selection.max_size)) for i, name, frame in kept)
        orientation, colour = video.conversions(source)
        mask_files = dict(enumerate(_video_mask_files(mask_dir, total))) if mask_dir else None
    elif source.is_dir():
        files = folder_photos(source)
        total = len(files)
        picking = _picking(_pick(total, selection, None), total, selection.sharpest)
        upright, orientation = folder_orientation([files[i] for i in picking.candidates])
        colour = "as stored"
        opened = ((i, files[i].name, open_image(files[i], "RGB", upright)) for i in picking.candidates)
        images = picking.keep_sharpest(opened, image_sharpness)
        mask_files = {i: _folder_mask(mask_dir, files[i]) for i in picking.candidates} if mask_dir else None
    else:
        raise InputError(source, "INPUT", "is neither a video file nor a folder", f"video types: {video.video_types()}")
    count = len(picking.targets)
    if count < 2:
        raise InputError(source, "INPUT", f"yields {count} frame(s); at least 2 are needed", "use more frames")
    frames = _frames(images, mask_files, selection.max_size)
    return Capture(count, frames, orientation, colour, picking if count < total else None, total)


def _picking(targets: list[int], total: int, sharpest: bool) -> Picking:
    """The candidates of each target: its window where the sharpest is wanted and frames are left out, else itself."""
    if sharpest and len(targets) < total:
        return Picking(targets, windows(targets, total))
    return Picking(targets, [range(t, t + 1) for t in targets])


def _frames(images, mask_files: dict[int, Path] | None, max_size: int | None) -> Iterator[Frame]:
    for index, name, image in images:
        mask = open_image(mask_files[index], "L") if mask_files else None
        if mask is not None and not _same_shape(mask.size, image.size):
            raise InputError(
                mask_files[index],
                "--masks",
                f"is {mask.width}x{mask.height}, a different shape from its frame ({name}: "
                f"{image.width}x{image.height} upright, as players show it)",
                "make the masks from the upright frames",
            )
        image = _downscale(image, max_size)
        yield Frame(name, image, mask.resize(image.size, Image.Resampling.NEAREST) if mask else None)


def _same_shape(size: tuple[int, int], other: tuple[int, int]) -> bool:
    ratio, other_ratio = size[0] / size[1], other[0] / other[1]
    return abs(ratio - other_ratio) <= SHAPE_TOLERANCE * other_ratio


def _pick(total: int, selection: Selection, fps: float | None) -> list[int]:
    """Source indices to keep: evenly spaced (`count`), every 1/F seconds (`fps`), or all."""
    if selection.count is not None:
        count = min(selection.count, total)
        return select_evenly(range(total), count) if count else []
    if selection.fps is not None and fps:
        step = max(fps / selection.fps, 1.0)
        return sorted({int(math.floor(k * step)) for k in range(int(total / step) + 1) if k * step < total})
    return list(range(total))


def _video_mask_files(mask_dir: Path, total: int) -> list[Path]:
    files = _mask_files(mask_dir)
    if len(files) != total:
        raise InputError(
            mask_dir,
            "--masks",
            f"has {len(files)} mask images but the video has {total} frames",
            "give one mask per video frame, in name order",
        )
    return files


def _folder_mask(mask_dir: Path, image: Path) -> Path:
    for candidate in (mask_dir / f"{image.stem}.png", mask_dir / f"{image.name}.png", mask_dir / image.name):
        if candidate.is_file():
            return candidate
    raise InputError(
        mask_dir, "--masks", f"no mask for {image.name}", f"add {image.stem}.png (white = keep, black = ignore)"
    )


def _mask_files(mask_dir: Path) -> list[Path]:
    if not mask_dir.is_dir():
        raise InputError(mask_dir, "--masks", "is not a folder", "give the folder of mask images")
    return sorted(p for p in mask_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _downscale(image: Image.Image, max_size: int | None) -> Image.Image:
    size = video.scaled_size(image.size, max_size)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)
