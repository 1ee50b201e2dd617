"""The frames of a capture: read from a video (PyAV) or a folder of images, picked, downscaled, with their masks.

Frames are turned upright as players and photo viewers show them: a phone stores a portrait video or photo sideways,
with a rotation (a video's display matrix, a photo's EXIF orientation) that decoders leave to the viewer. A folder
whose photos disagree (some held upright, some sideways) is kept as stored, so that one camera's frames keep one
shape. Masks must have their upright frame's shape.

Colour: a phone's video is HDR by default (an iPhone's HLG, many Android phones' PQ, both in BT.2020), which a plain
conversion to RGB shows washed out and dull. Such frames are tone-mapped to SDR sRGB by FFmpeg's colour management
(its BT.2408 mapping: HDR reference white, 203 cd/m2, becomes SDR white), as a player shows them on an SDR screen.

Photos: whatever PIL reads, HEIC (an iPhone's photos unless set to "Most Compatible") through pillow-heif, and AVIF
where PIL was built with it. pillow-heif turns a HEIC photo upright as it opens it (HEIF's own rotation, which iPhones
write beside the EXIF tag) and keeps the tag apart, as `original_orientation`; `_stored` undoes that turn.

Masks follow COLMAP's convention: white = use this pixel, black = ignore it (no features there, and nerfstudio
ignores it in training). A folder's masks are matched by file name (`img.jpg` <- `img.png`, `img.jpg.png` or
`img.jpg`); a video's masks are one image per video frame, in name order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import av
import pillow_heif
from av.video.reformatter import ColorPrimaries, ColorTrc
from PIL import Image, ImageOps, features

from nerftune.data.frames import select_evenly
from nerftune.data.sharpest import Picking, image_sharpness, score_size, sharpness, windows
from nerftune.errors import InputError

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"}
pillow_heif.register_heif_opener()  # for the frames and for the EXIF focal length (nerftune.data.focal) alike
AVIF_SUFFIXES = {".avif"} if features.check("avif") else set()
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".heic", ".heif"} | AVIF_SUFFIXES
# what cameras also write, and no PIL plugin here reads
UNREAD_PHOTO_SUFFIXES = {".avif", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2"} - AVIF_SUFFIXES
EXIF_ORIENTATION = 0x0112  # 1: as stored; 2 to 8: mirrored and/or turned by 90, 180 or 270 degrees
# how to undo what ImageOps.exif_transpose does for each orientation: each is its own inverse but the quarter turns
UNDO_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
HDR_TRANSFERS = {ColorTrc.ARIB_STD_B67: "HLG", ColorTrc.SMPTE2084: "PQ"}
# what a PNG is shown as: sRGB's curve and BT.709's primaries (sRGB's own)
SDR_SRGB = {
    "dst_colorspace": "ITU709",
    "dst_color_trc": ColorTrc.IEC61966_2_1,
    "dst_color_primaries": ColorPrimaries.BT709,
}
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


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def read_frames(source: Path, selection: Selection, mask_dir: Path | None = None) -> Capture:
    """The selected frames of a video or folder, upright. The input is checked before the first frame is read;
    raises `InputError` for bad input."""
    source = Path(source)
    if not source.exists():
        raise InputError(source, "INPUT", "does not exist", "give a video file or a folder of images")
    if is_video(source):
        total = _video_frame_count(source)
        picking = _picking(_pick(total, selection, _video_fps(source)), total, selection.sharpest)
        decoded = ((i, f"video frame {i}", frame) for i, frame in _decode(source, picking.candidates))
        # scored at a small size in grey straight from the decoder: a full RGB image costs 4x that on 4K frames
        kept = picking.keep_sharpest(decoded, _video_frame_sharpness)
        images = ((i, name, _video_image(frame, selection.max_size)) for i, name, frame in kept)
        orientation, colour = _video_orientation(source), _video_colour(source)
        mask_files = dict(enumerate(_video_mask_files(mask_dir, total))) if mask_dir else None
    elif source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) < 2:
            _refuse_unread_photos(source)
        total = len(files)
        picking = _picking(_pick(total, selection, None), total, selection.sharpest)
        upright, orientation = _folder_orientation([files[i] for i in picking.candidates])
        colour = "as stored"
        opened = ((i, files[i].name, _open(files[i], "RGB", upright)) for i in picking.candidates)
        images = picking.keep_sharpest(opened, image_sharpness)
        mask_files = {i: _folder_mask(mask_dir, files[i]) for i in picking.candidates} if mask_dir else None
    else:
        raise InputError(source, "INPUT", "is neither a video file nor a folder", f"video types: {_video_types()}")
    count = len(picking.targets)
    if count < 2:
        raise InputError(source, "INPUT", f"yields {count} frame(s); at least 2 are needed", "use more frames")
    frames = _frames(images, mask_files, selection.max_size)
    return Capture(count, frames, orientation, colour, picking if count < total else None, total)


def _refuse_unread_photos(folder: Path) -> None:
    """A folder of photos in a format read here by none of PIL's plugins (a camera's raw files) says so, rather
    than that it has no frames."""
    unread = sorted({p.suffix.lower() for p in folder.iterdir() if p.suffix.lower() in UNREAD_PHOTO_SUFFIXES})
    if unread:
        raise InputError(
            folder,
            "INPUT",
            f"holds {' and '.join(unread)} photos, which are not read here",
            f"convert them to JPEG or PNG (read here: {', '.join(sorted(IMAGE_SUFFIXES))}), or give the video",
        )


def _picking(targets: list[int], total: int, sharpest: bool) -> Picking:
    """The candidates of each target: its window where the sharpest is wanted and frames are left out, else itself."""
    if sharpest and len(targets) < total:
        return Picking(targets, windows(targets, total))
    return Picking(targets, [range(t, t + 1) for t in targets])


def _frames(images, mask_files: dict[int, Path] | None, max_size: int | None) -> Iterator[Frame]:
    for index, name, image in images:
        mask = _open(mask_files[index], "L") if mask_files else None
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


def _video_frame_count(path: Path) -> int:
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
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        return float(rate) if rate else None


def _decode(path: Path, keep: list[int]) -> Iterator[tuple[int, Any]]:
    """(index, PyAV video frame) of the frames in `keep`."""
    wanted = set(keep)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # whole frames on every core: a phone's HEVC often has one slice a frame
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    yield index, frame
                if index >= keep[-1]:
                    break
    except av.error.FFmpegError as error:
        raise InputError(path, "INPUT", f"decoding failed ({error})", "re-export it as H.264 mp4") from None


def _video_frame_sharpness(frame: Any) -> float:
    return sharpness(frame.reformat(*score_size(frame.width, frame.height), format="gray").to_ndarray())


def _video_image(frame: Any, max_size: int | None) -> Image.Image:
    """The frame as a player shows it on an SDR screen: upright, and an HDR frame tone-mapped to sRGB. The mapping
    costs about 0.2 s a megapixel on one core, so an HDR frame is first scaled to the size it will be written."""
    rotation = frame.rotation
    if _is_hdr(frame):
        size = _scaled_size((frame.width, frame.height), max_size)
        if size != (frame.width, frame.height):
            frame = frame.reformat(*size, interpolation="LANCZOS")
        frame = frame.reformat(format="rgb24", **SDR_SRGB)
    return _turned(frame.to_image(), rotation)


def _is_hdr(frame: Any) -> bool:
    return frame.color_trc in HDR_TRANSFERS


def _video_colour(path: Path) -> str:
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (av.error.FFmpegError, StopIteration):  # reported by the frame reader
        return "as stored"
    if not _is_hdr(frame):
        return "as stored"
    return f"tone-mapped from HDR ({HDR_TRANSFERS[frame.color_trc]}) to SDR sRGB, as a player shows it"


def _turned(image: Image.Image, degrees: float) -> Image.Image:
    """`image` turned counter-clockwise by a video's display rotation (a phone's portrait video: -90), as ffmpeg
    and players do."""
    turns = {1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_270}
    quarter_turns = _quarter_turns(degrees)
    return image.transpose(turns[quarter_turns]) if quarter_turns else image


def _quarter_turns(degrees: float) -> int:
    """0 to 3 counter-clockwise quarter turns; rotations between them do not occur in phone videos and are rounded."""
    return round(degrees / 90) % 4


def _video_orientation(path: Path) -> str:
    try:
        with av.open(str(path)) as container:
            degrees = next(container.decode(video=0)).rotation
    except (av.error.FFmpegError, StopIteration):  # reported by the frame reader
        return "as stored"
    if not _quarter_turns(degrees):
        return "as stored"
    return f"turned upright by the video's display rotation ({degrees:g} degrees)"


def _folder_orientation(files: list[Path]) -> tuple[bool, str]:
    """Whether to turn the photos upright by their EXIF orientation, and what was done, for the report."""
    tags = [_orientation_tag(path) for path in files]
    if set(tags) == {1}:
        return False, "as stored"
    if len(set(tags)) == 1:
        return True, f"turned upright by their EXIF orientation ({tags[0]})"
    turned = sum(tag != 1 for tag in tags)
    return False, (
        f"as stored, sideways in viewers: {turned} of {len(tags)} photos carry an EXIF turn and the others do not, "
        "and one camera's frames must keep one shape"
    )


def _orientation_tag(path: Path) -> int:
    """The photo's EXIF orientation, also where pillow-heif has applied it and set the tag to 1."""
    try:
        with Image.open(path) as image:
            return int(image.info.get("original_orientation") or image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # an unreadable photo is reported when its pixels are read
        return 1


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


def _open(path: Path, mode: str, upright: bool = False) -> Image.Image:
    try:
        with Image.open(path) as image:
            return (ImageOps.exif_transpose(image) if upright else _stored(image)).convert(mode)
    except Exception as error:  # PIL raises many types for broken files
        raise InputError(path, "", f"unreadable image ({error})", "replace or remove it") from None


def _stored(image: Image.Image) -> Image.Image:
    """`image` as stored: a HEIC photo turned back where pillow-heif turned it upright on opening."""
    turned = image.info.get("original_orientation") or 1
    return image.transpose(UNDO_ORIENTATION[turned]) if turned != 1 else image


def _downscale(image: Image.Image, max_size: int | None) -> Image.Image:
    size = _scaled_size(image.size, max_size)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def _scaled_size(size: tuple[int, int], max_size: int | None) -> tuple[int, int]:
    if not max_size or max(size) <= max_size:
        return size
    scale = max_size / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _video_types() -> str:
    return ", ".join(sorted(VIDEO_SUFFIXES))
