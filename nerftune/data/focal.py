"""A known focal length, as a prior for SfM: from the command line, a camera file, or the capture's own metadata.

Without one, COLMAP guesses 1.2 x the longest image side and must find the truth from the matches, which a weak
capture (low texture, wide baselines) cannot always give; global mapping in particular places cameras badly without
it. A prior is kept as what the user said (35 mm-equivalent millimetres, a horizontal field of view, or pixels at a
known image width) and turned into pixels for the frames as written (after any downscaling).

- `--focal-mm 26`: the 35 mm-equivalent focal length, as phone makers state it (the diagonal of a 36 x 24 mm frame).
- `--fov 70`: the horizontal field of view in degrees.
- `--camera FILE`: a JSON file with `fl_x` (pixels) and `w`, e.g. another capture's transforms.json of the same lens
  and zoom (COLMAP's and nerfstudio's convention).
- metadata: EXIF `FocalLengthIn35mmFilm` of a folder's photos, or the 35 mm-equivalent focal length that some
  phones (iPhones: `com.apple.quicktime.camera.focal_length.35mm_equivalent`) write into the video.

A capture of several lenses has a prior per lens (`lenses`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from nerftune.errors import InputError

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
FOV_RANGE_DEG = (2.0, 160.0)  # wider is a fisheye, which none of the camera models here describes


@dataclass(frozen=True)
class FocalPrior:
    kind: str  # "35mm" (millimetres), "fov" (horizontal degrees) or "pixels" (at `width`)
    value: float
    source: str  # what the user knows it as: "--focal-mm 26", "EXIF of IMG_0001.jpg", ...
    width: int = 0  # the image width a "pixels" value belongs to

    def pixels(self, width: int, height: int) -> float:
        """The focal length in pixels for frames of `width` x `height`."""
        if self.kind == "35mm":
            return self.value / FULL_FRAME_DIAGONAL_MM * math.hypot(width, height)
        if self.kind == "fov":
            return 0.5 * width / math.tan(math.radians(self.value) / 2)
        return self.value * width / self.width

    def field_of_view_deg(self) -> float:
        """The angle the value stands for (diagonal for 35 mm, horizontal otherwise), independent of image size."""
        if self.kind == "35mm":
            return math.degrees(2 * math.atan(FULL_FRAME_DIAGONAL_MM / 2 / self.value)) if self.value > 0 else 180.0
        if self.kind == "fov":
            return self.value
        return math.degrees(2 * math.atan(self.width / 2 / self.value)) if self.value > 0 else 180.0

    def is_possible(self) -> bool:
        return self.value > 0 and FOV_RANGE_DEG[0] <= self.field_of_view_deg() <= FOV_RANGE_DEG[1]

    def to_json(self, width: int, height: int) -> dict:
        return {"source": self.source, "focal_px": round(self.pixels(width, height), 3)}


def from_arguments(focal_mm: float | None, fov: float | None, camera_file: Path | None) -> FocalPrior | None:
    """The prior the user gave (at most one of the three); raises `InputError` where it is impossible."""
    if focal_mm is not None:
        prior, flag = FocalPrior("35mm", focal_mm, f"--focal-mm {focal_mm:g}"), "--focal-mm"
    elif fov is not None:
        prior, flag = FocalPrior("fov", fov, f"--fov {fov:g}"), "--fov"
    elif camera_file is not None:
        prior, flag = _read_camera_file(camera_file), "--camera"
    else:
        return None
    if not prior.is_possible():
        low, high = FOV_RANGE_DEG
        raise InputError(
            "command line",
            flag,
            f"{prior.source} means a field of view of {prior.field_of_view_deg():.1f} degrees, impossible for the "
            f"camera models here, which describe {low:g} to {high:g}",
            "give the 35 mm-equivalent focal length (e.g. --focal-mm 26) or the horizontal angle (e.g. --fov 65)",
        )
    return prior


def _read_camera_file(path: Path) -> FocalPrior:
    try:
        found = {
            (float(camera["fl_x"]), int(camera["w"])) for camera in _cameras_of(json.loads(Path(path).read_text()))
        }
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(path, "--camera", f"unreadable: {error}", "give a JSON file with fl_x and w") from None
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError(path, "--camera", "needs numbers `fl_x` (pixels) and `w`", "e.g. a transforms.json") from None
    if len(found) > 1:
        raise InputError(
            path,
            "--camera",
            f"gives its frames {len(found)} different focal lengths (a capture of several lenses, or a zoom), and a "
            "prior is one lens's",
            "give a camera file of one lens, or that lens's --focal-mm",
        )
    [(focal, width)] = found
    if width <= 0:
        raise InputError(path, "w", f"is {width}", "the image width in pixels the focal length belongs to")
    return FocalPrior("pixels", focal, f"--camera {path}", width)


def _cameras_of(transforms: dict) -> list[dict]:
    """A camera file's intrinsics, per frame where it lists frames (nerfstudio's way of giving several lenses); a
    shared field wins over a frame's, key by key, as nerfstudio reads them (and `Dataset.main_camera`)."""
    return [{**frame, **transforms} for frame in transforms.get("frames") or [{}]]


def possible(prior: FocalPrior) -> FocalPrior | None:
    """The prior, where it describes a camera the models here can (else None)."""
    return prior if prior.is_possible() else None


def video_35mm(path: Path) -> float | None:
    """The 35 mm-equivalent focal length a phone wrote into the video's metadata, if any."""
    import av

    try:
        with av.open(str(path)) as container:
            tags = {**container.metadata, **container.streams.video[0].metadata}
    except Exception:  # an undecodable video is reported by the frame reader
        return None
    for key, value in tags.items():
        if "focal_length" in key.lower() and "35mm" in key.lower():
            try:
                return float(value)
            except ValueError:
                return None
    return None
