"""A video's frames as a player shows them: decoded with PyAV, upright, and an HDR video's tone-mapped to SDR.

A phone stores a portrait video sideways, with a display rotation that decoders leave to the player; it is applied.
A phone's video is HDR by default (an iPhone's HLG, many Android phones' PQ, both in BT.2020), which a plain
conversion to RGB shows washed out and dull. Such frames are tone-mapped to SDR sRGB by FFmpeg's colour management
(its BT.2408 mapping: HDR reference white, 203 cd/m2, becomes SDR white), as a player shows them on an SDR screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import av
from av.video.reformatter import ColorPrimaries, ColorTrc
from PIL import Image

from nerftune.data.sharpest import score_size, sharpness
from nerftune.errors import InputError

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"}
HDR_TRANSFERS = {ColorTrc.ARIB_STD_B67: "HLG", ColorTrc.SMPTE2084: "PQ"}
# what a PNG is shown as: sRGB's curve and BT.709's primaries (sRGB's own)
SDR_SRGB = {
    "dst_colorspace": "ITU709",
    "dst_color_trc": ColorTrc.IEC61966_2_1,
    "dst_color_primaries": ColorPrimaries.BT709,
}
REEXPORT = "re-export it as H.264 mp4"


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def video_types() -> str:
    return ", ".join(sorted(VIDEO_SUFFIXES))


def frame_count(path: Path) -> int:
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return stream.frames
            return sum(1 for packet in container.demux(stream) if packet.size)  # containers without a frame count
    except (av.error.FFmpegError, IndexError) as error:
        raise InputError(path, "INPUT", f"cannot be decoded as a video ({error})", REEXPORT) from None


def frame_rate(path: Path) -> float | None:
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        return float(rate) if rate else None


def decode(path: Path, keep: list[int]) -> Iterator[tuple[int, Any]]:
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
        raise InputError(path, "INPUT", f"decoding failed ({error})", REEXPORT) from None


def frame_sharpness(frame: Any) -> float:
    """Scored at a small size in grey straight from the decoder: a full RGB image costs 4x that on 4K frames."""
    return sharpness(frame.reformat(*score_size(frame.width, frame.height), format="gray").to_ndarray())


def shown_image(frame: Any, max_size: int | None) -> Image.Image:
    """The frame as a player shows it on an SDR screen: upright, and an HDR frame tone-mapped to sRGB. The mapping
    costs about 0.2 s a megapixel on one core, so an HDR frame is first scaled to the size it will be written."""
    rotation = frame.rotation
    if _is_hdr(frame):
        size = scaled_size((frame.width, frame.height), max_size)
        if size != (frame.width, frame.height):
            frame = frame.reformat(*size, interpolation="LANCZOS")
        frame = frame.reformat(format="rgb24", **SDR_SRGB)
    return _turned(frame.to_image(), rotation)


def conversions(path: Path) -> tuple[str, str]:
    """How the frames are turned upright and how their colours are converted, for the report."""
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (av.error.FFmpegError, StopIteration):  # reported by the frame reader
        return "as stored", "as stored"
    orientation = "as stored"
    if _quarter_turns(frame.rotation):
        orientation = f"turned upright by the video's display rotation ({frame.rotation:g} degrees)"
    colour = "as stored"
    if _is_hdr(frame):
        colour = f"tone-mapped from HDR ({HDR_TRANSFERS[frame.color_trc]}) to SDR sRGB, as a player shows it"
    return orientation, colour


def scaled_size(size: tuple[int, int], max_size: int | None) -> tuple[int, int]:
    """`size` scaled down so that its longest side is at most `max_size` (None or 0: kept)."""
    if not max_size or max(size) <= max_size:
        return size
    scale = max_size / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _is_hdr(frame: Any) -> bool:
    return frame.color_trc in HDR_TRANSFERS


def _turned(image: Image.Image, degrees: float) -> Image.Image:
    """`image` turned counter-clockwise by a video's display rotation (a phone's portrait video: -90), as ffmpeg
    and players do."""
    turns = {1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_270}
    quarter_turns = _quarter_turns(degrees)
    return image.transpose(turns[quarter_turns]) if quarter_turns else image


def _quarter_turns(degrees: float) -> int:
    """0 to 3 counter-clockwise quarter turns; rotations between them do not occur in phone videos and are rounded."""
    return round(degrees / 90) % 4
