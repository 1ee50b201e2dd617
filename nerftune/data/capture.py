"""The frames of a capture: read from a video (PyAV) or a folder of images, picked, downscaled, with their masks.

Masks follow COLMAP's convention: white = use this pixel, black = ignore it (no features there, and nerfstudio
ignores it in training). A folder's masks are matched by file name (`img.jpg` <- `img.png`, `img.jpg.png` or
`img.jpg`); a video's masks are one image per video frame, in name order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from PIL import Image

from nerftune.data.frames import select_evenly
from nerftune.errors import InputError

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


@dataclass(frozen=True)
class Selection:
    """Which frames to keep: `count` evenly over the capture, or `fps` per second of video; neither keeps all."""

    count: int | None = None
    fps: float | None = None
    max_size: int | None = None  # longest side in pixels after downscaling


@dataclass(frozen=True)
class Frame:
    source: str  # what the user knows it as: the image's file name, or "video frame N"
    image: Image.Image
    mask: Image.Image | None  # "L" mode, same size as image


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def read_frames(source: Path, selection: Selection, mask_dir: Path | None = None) -> tuple[int, Iterator[Frame]]:
    """How many frames are selected, and the frames one at a time, in order (a long 4K video would not fit in
    memory at once). The input is checked before the first frame is read; raises `InputError` for bad input."""
    source = Path(source)
    if not source.exists():
        raise InputError(source, "INPUT", "does not exist", "give a video file or a folder of images")
    if is_video(source):
        total = _video_frame_count(source)
        keep = _pick(total, selection, _video_fps(source))
        images = ((f"video frame {i}", image) for i, image in _decode(source, keep))
        mask_files = _video_mask_files(mask_dir, keep, total) if mask_dir else None
    elif source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        keep = _pick(len(files), selection, None)
        images = ((files[i].name, _open(files[i], "RGB")) for i in keep)
        mask_files = [_folder_mask(mask_dir, files[i]) for i in keep] if mask_dir else None
    else:
        raise InputError(source, "INPUT", "is neither a video file nor a folder", f"video types: {_video_types()}")
    if len(keep) < 2:
        raise InputError(source, "INPUT", f"yields {len(keep)} frame(s); at least 2 are needed", "use more frames")
    return len(keep), _frames(images, mask_files, selection.max_size)


def _frames(images, mask_files: list[Path] | None, max_size: int | None) -> Iterator[Frame]:
    for index, (name, image) in enumerate(images):
        image = _downscale(image, max_size)
        mask = _open(mask_files[index], "L").resize(image.size, Image.Resampling.NEAREST) if mask_files else None
        yield Frame(name, image, mask)


def _pick(total: int, selection: Selection, fps: float | None) -> list[int]:
    """Source indices to keep: evenly spaced (`count`), every 1/F seconds (`fps`), or all."""
    if selection.count is not None:
        count = min(selection.count, total)
        return select_evenly(range(total), count) if count else []
    if selection.fps is not None and fps:
        step = max(fps / selection.fps, 1.0)
        return sorted({int(math.floor(k * step)) for k in range(int(total / step) + 1) if k * step < total})
    return list(range(total))


def _video_frame_count(path: Path) -> int:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return stream.frames
            return sum(1 for packet in container.demux(stream) if packet.size)  # containers without a frame count
    except (av.error.FFmpegError, IndexError) as error:
        raise InputError(
            path, "INPUT", f"cannot be decoded as a video ({error})", "re-export it as H.264 mp4"
        ) from None


def _video_fps(path: Path) -> float | None:
    import av

    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        return float(rate) if rate else None


def _decode(path: Path, keep: list[int]) -> Iterator[tuple[int, Image.Image]]:
    import av

    wanted = set(keep)
    try:
        with av.open(str(path)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index in wanted:
                    yield index, frame.to_image()
                if index >= keep[-1]:
                    break
    except av.error.FFmpegError as error:
        raise InputError(path, "INPUT", f"decoding failed ({error})", "re-export it as H.264 mp4") from None


def _video_mask_files(mask_dir: Path, keep: list[int], total: int) -> list[Path]:
    files = _mask_files(mask_dir)
    if len(files) != total:
        raise InputError(
            mask_dir,
            "--masks",
            f"has {len(files)} mask images but the video has {total} frames",
            "give one mask per video frame, in name order",
        )
    return [files[i] for i in keep]


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


def _open(path: Path, mode: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except Exception as error:  # PIL raises many types for broken files
        raise InputError(path, "", f"unreadable image ({error})", "replace or remove it") from None


def _downscale(image: Image.Image, max_size: int | None) -> Image.Image:
    if not max_size or max(image.size) <= max_size:
        return image
    scale = max_size / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _video_types() -> str:
    return ", ".join(sorted(VIDEO_SUFFIXES))
