"""`doc_cer` of a novel view: how legible the document's text stays where no camera stood.

A novel view has no ground truth image, but the document and its text are the same from every side. The reference is
what Tesseract reads in the real test view that shows the document largest (rectified by its corners, the right way
up, as `doc_cer` of a test view reads it); a rendered view's `doc_cer` is the character error rate of what Tesseract
reads in its document, rectified the same way, against that reference: 0 reads as the real frame does, 1 reads
nothing of it. None where the data records no document corners, Tesseract is missing, the reference reads fewer than
`MIN_CHARACTERS` characters, or the document spans fewer than `MIN_DOCUMENT_PIXELS` in the view (or lies behind it).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from nerftune.data.document_region import document_aspect, document_corners, legible_corners, text_checks
from nerftune.legibility import TextCheck


def reference_text(view: dict, view_dir: Path) -> TextCheck | None:
    """The read document of the test view of a trial's dataset view (its transforms.json, in `view_dir`) that shows
    it largest, or None where there is nothing to read."""
    by_name = {frame["file_path"]: frame for frame in view["frames"]}
    checks = text_checks(view, [by_name[name] for name in view.get("test_filenames", [])], view_dir)
    if not checks:
        return None
    image, check = max(checks.items(), key=lambda item: _area(item[1].corners))
    with Image.open(image) as truth:
        check.read_truth(np.asarray(truth.convert("RGB")) / 255.0)
    return check if check.has_text else None


def novel_error_rates(
    view: dict, view_dir: Path, camera_paths: dict, poses: np.ndarray, images: list[np.ndarray]
) -> list[float | None]:
    """Each rendered view's `doc_cer` (`view`: the trial's dataset view, read from `view_dir`; `poses`:
    camera-to-world in the dataset's frame, as `camera_paths` lists them; `images`: (H, W, 3) uint8 renders)."""
    reference = reference_text(view, view_dir)
    if reference is None:
        return [None] * len(images)
    corners = document_corners(view)
    aspect = document_aspect(corners)
    rates = []
    for pose, camera, image in zip(poses, camera_paths["camera_path"], images):
        intrinsics = path_intrinsics(camera_paths, camera)
        pixels = legible_corners(corners, pose, intrinsics)
        if pixels is None:
            rates.append(None)
            continue
        size = (int(intrinsics["w"]), int(intrinsics["h"]))
        check = TextCheck(pixels, size, aspect, truth=reference.truth, turns=reference.turns)
        rates.append(check.error_rate(None, image / 255.0))
    return rates


def path_intrinsics(camera_paths: dict, camera: dict) -> dict[str, float]:
    """A camera of a nerfstudio camera path as nerfstudio renders it: square pixels, the vertical field of view
    `fov` (degrees) over the render height, the principal point at the centre."""
    width, height = float(camera_paths["render_width"]), float(camera_paths["render_height"])
    focal = height / (2 * math.tan(math.radians(float(camera["fov"])) / 2))
    return {"fl_x": focal, "fl_y": focal, "cx": width / 2, "cy": height / 2, "w": width, "h": height}


def _area(corners: np.ndarray) -> float:
    x, y = corners[:, 0], corners[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
