"""A folder's photos: which formats are read, and which way up.

Read: whatever PIL reads, HEIC (an iPhone's photos unless set to "Most Compatible") through pillow-heif, and AVIF
where PIL was built with it. A phone stores a portrait photo sideways with an EXIF orientation that decoders leave to
the viewer. A folder's photos are turned upright where they all agree; a folder whose photos disagree (some held
upright, some sideways) is kept as stored, so that one camera's frames keep one shape. pillow-heif turns a HEIC
photo upright as it opens it (HEIF's own rotation, which iPhones write beside the EXIF tag) and keeps the tag apart,
as `original_orientation`; `_stored` undoes that turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

import pillow_heif
from PIL import Image, ImageOps, features

from nerftune.errors import InputError

T = TypeVar("T")
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


def folder_photos(folder: Path) -> list[Path]:
    """The photos of `folder` read here, in name order; raises `InputError` for a folder of photos in a format
    that no PIL plugin here reads (a camera's raw files), or of no photos at all, rather than finding no frames."""
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    unread = sorted({p.suffix.lower() for p in folder.iterdir() if p.suffix.lower() in UNREAD_PHOTO_SUFFIXES})
    read_here = f"read here: {', '.join(sorted(IMAGE_SUFFIXES))}"
    if len(photos) < 2 and unread:
        raise InputError(
            folder,
            "INPUT",
            f"holds {' and '.join(unread)} photos, which are not read here",
            f"convert them to JPEG or PNG ({read_here}), or give the video",
        )
    if not photos:
        raise InputError(folder, "INPUT", f"holds no photos ({read_here})", "give the capture's folder, or its video")
    return photos


def folder_orientation(photos: list[Path]) -> tuple[bool, str]:
    """Whether to turn the photos upright by their EXIF orientation, and what was done, for the report."""
    tags = [_orientation_tag(path) for path in photos]
    if set(tags) == {1}:
        return False, "as stored"
    if len(set(tags)) == 1:
        return True, f"turned upright by their EXIF orientation ({tags[0]})"
    turned = sum(tag != 1 for tag in tags)
    return False, (
        f"as stored, sideways in viewers: {turned} of {len(tags)} photos carry an EXIF turn and the others do not, "
        "and one camera's frames must keep one shape"
    )


def open_image(path: Path, mode: str, upright: bool = False) -> Image.Image:
    """The image in PIL `mode`, turned upright by its EXIF orientation or as stored; `InputError` if unreadable."""
    try:
        with Image.open(path) as image:
            return (ImageOps.exif_transpose(image) if upright else _stored(image)).convert(mode)
    except Exception as error:  # PIL raises many types for broken files
        raise InputError(path, "", f"unreadable image ({error})", "replace or remove it") from None


def read_header(path: Path, read: Callable[[Image.Image], T], default: T) -> T:
    """What `read` finds in the opened photo (its EXIF, say), or `default` where the photo or its metadata cannot be
    read: an unreadable photo is reported when its pixels are read, and broken metadata only loses what it held."""
    try:
        with Image.open(path) as image:
            return read(image)
    except Exception:  # PIL raises many types for broken files
        return default


def _orientation_tag(path: Path) -> int:
    """The photo's EXIF orientation, also where pillow-heif has applied it and set the tag to 1."""
    return read_header(
        path, lambda image: int(image.info.get("original_orientation") or image.getexif().get(EXIF_ORIENTATION, 1)), 1
    )


def _stored(image: Image.Image) -> Image.Image:
    """`image` as stored: a HEIC photo turned back where pillow-heif turned it upright on opening."""
    turned = image.info.get("original_orientation") or 1
    return image.transpose(UNDO_ORIENTATION[turned]) if turned != 1 else image
