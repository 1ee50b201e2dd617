"""Where the document is in each test view: the pixels the document metrics (`doc_psnr`, ...) are computed on.

Whole-image PSNR is dominated by the background: more frames can raise it while the text on the document becomes
less readable (nerfstudio issue #2728). The region comes from the test frame's mask where the data has masks (the
synthetic scene's `document_mask_path`; `mask_path` of `nerftune prepare --masks`, whose masks mark the document),
otherwise from projecting the document's corners (`document_corners` under `nerftune` in transforms.json, which the
synthetic scene and `nerftune prepare --masks` write) into the view with its pose and intrinsics. Pure numpy and PIL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nerftune.data.dataset import Dataset, pose_matrix
from nerftune.legibility import MIN_DOCUMENT_PIXELS, TextCheck, ocr_available

MASK_KEYS = ("document_mask_path", "mask_path")  # the first a frame has is its document mask


def region_source(dataset: Dataset) -> str | None:
    """ "masks", "corners" or None: where the document regions of this dataset's test views come from."""
    test_frames = [dataset.frames[i] for i in dataset.test_indices]
    if all(any(key in frame for key in MASK_KEYS) for frame in test_frames):
        return "masks"
    if len(dataset.transforms.get("nerftune", {}).get("document_corners", [])) >= 3:
        return "corners"
    return None


def view_regions(dataset: Dataset) -> dict[str, np.ndarray]:
    """Each test view's document region as an (H, W) bool array, keyed by its image's resolved path."""
    source = region_source(dataset)
    if source is None:
        return {}
    regions = {}
    for index in dataset.test_indices:
        frame = dataset.frames[index]
        image = str((dataset.root / frame["file_path"]).resolve())
        if source == "masks":
            mask_path = dataset.root / next(frame[key] for key in MASK_KEYS if key in frame)
            with Image.open(mask_path) as mask:
                regions[image] = np.asarray(mask.convert("L")) >= 128
        else:
            corners = np.asarray(dataset.transforms["nerftune"]["document_corners"], float)
            regions[image] = project_polygon(corners, pose_matrix(frame), _intrinsics(dataset.transforms, frame))
    return regions


def project_polygon(corners: np.ndarray, camera_to_world: np.ndarray, intrinsics: dict) -> np.ndarray:
    """The pixels inside the projection of a planar polygon (world corners, in order) seen by an OpenGL camera."""
    width, height = int(intrinsics["w"]), int(intrinsics["h"])
    pixels = project_points(corners, camera_to_world, intrinsics)
    if pixels is None:
        return np.zeros((height, width), bool)  # behind the camera: not a view of the document
    canvas = Image.new("L", (width, height), 0)
    # PIL puts pixel i's centre at i; the camera model at i + 0.5
    ImageDraw.Draw(canvas).polygon([(x - 0.5, y - 0.5) for x, y in pixels], fill=255)
    return np.asarray(canvas) >= 128


def project_points(points: np.ndarray, camera_to_world: np.ndarray, intrinsics: dict) -> np.ndarray | None:
    """(N, 2) image coordinates (x, y; pixel i spans [i, i + 1)) of world points, None if one is behind the camera."""
    in_camera = (np.linalg.inv(camera_to_world) @ np.c_[points, np.ones(len(points))].T)[:3].T
    depth = -in_camera[:, 2]  # OpenGL cameras look down -z
    if np.any(depth <= 1e-9):
        return None
    u = intrinsics["cx"] + intrinsics["fl_x"] * in_camera[:, 0] / depth
    v = intrinsics["cy"] - intrinsics["fl_y"] * in_camera[:, 1] / depth
    return np.c_[u, v]


def view_text_checks(dataset: Dataset) -> dict[str, TextCheck]:
    """Each test view's document as `doc_cer` reads it (keyed like `view_regions`): where Tesseract is installed
    and the data records the document's corners."""
    return text_checks(dataset.transforms, [dataset.frames[i] for i in dataset.test_indices], dataset.root)


def text_checks(transforms: dict, frames: list[dict], root: Path) -> dict[str, TextCheck]:
    """The document of each of `frames` (of `transforms`, image paths relative to `root`) that shows it large
    enough to read, keyed by its image's resolved path; none without Tesseract or the document's corners."""
    corners = document_corners(transforms)
    if corners is None or not ocr_available():
        return {}
    aspect = document_aspect(corners)
    checks = {}
    for frame in frames:
        intrinsics = _intrinsics(transforms, frame)
        pixels = legible_corners(corners, pose_matrix(frame), intrinsics)
        if pixels is not None:
            image = str((root / frame["file_path"]).resolve())
            checks[image] = TextCheck(pixels, (int(intrinsics["w"]), int(intrinsics["h"])), aspect)
    return checks


def document_corners(transforms: dict) -> np.ndarray | None:
    """The document's four corners (world, in its own order) that the data records, or None."""
    corners = transforms.get("nerftune", {}).get("document_corners", [])
    return np.asarray(corners, float) if len(corners) == 4 else None


def document_aspect(corners: np.ndarray) -> float:
    return float(np.linalg.norm(corners[1] - corners[0]) / np.linalg.norm(corners[3] - corners[0]))


def legible_corners(corners: np.ndarray, camera_to_world: np.ndarray, intrinsics: dict) -> np.ndarray | None:
    """The document's corners in a view's pixels where each of its sides spans enough of them to be read."""
    pixels = project_points(corners, camera_to_world, intrinsics)
    if pixels is None or min(np.linalg.norm(np.roll(pixels, -1, axis=0) - pixels, axis=1)) < MIN_DOCUMENT_PIXELS:
        return None
    return pixels


def resized(region: np.ndarray, height: int, width: int) -> np.ndarray:
    """A region at the size the view is rendered (nerfstudio may downscale large images)."""
    if region.shape == (height, width):
        return region
    image = Image.fromarray(region.astype(np.uint8) * 255).resize((width, height), Image.Resampling.NEAREST)
    return np.asarray(image) >= 128


def _intrinsics(transforms: dict, frame: dict) -> dict:
    return {key: float(frame.get(key, transforms.get(key))) for key in ("fl_x", "fl_y", "cx", "cy", "w", "h")}


def corners_json(centre: np.ndarray, axes: np.ndarray, size: tuple[float, float]) -> list[list[float]]:
    """The four corners of a rectangle of `size` along the two in-plane `axes` around `centre`, in order."""
    half = np.asarray(size, float) / 2
    signs = ((-1, -1), (1, -1), (1, 1), (-1, 1))
    return [(centre + a * half[0] * axes[0] + b * half[1] * axes[1]).tolist() for a, b in signs]
