"""The document: its plane, its centre (the point of interest) and the crop in front of it, from sparse SfM points.

Pure numpy. The document lies on a plane that the cameras look at. Without masks, that is the plane (of the few
dominant ones RANSAC finds) nearest the cameras' common look-at point, and the point of interest is that look-at
point projected onto it. With masks that mark the document, all points lie on the document, so the dominant plane is
the document's and the point of interest is the middle of its points' extent.

The crop is a half-space: it keeps everything on or behind the document plane (up to a small margin for the
document's own relief) and cuts off all material between the cameras and the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nerftune.data.document_region import corners_json

PLANE_TOLERANCE = 0.005  # RANSAC inlier distance, as a fraction of the camera-to-look-at distance
CROP_MARGIN = 0.01  # kept in front of the plane, as a fraction of the camera-to-look-at distance
MAX_PLANES = 3
MIN_PLANE_SHARE = 0.1


@dataclass(frozen=True)
class Crop:
    """Keep points x with (x - point) . normal <= margin; `normal` points from the document towards the cameras."""

    point: np.ndarray
    normal: np.ndarray
    margin: float

    def keeps(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points) - self.point) @ self.normal <= self.margin

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "half-space",
            "point": self.point.tolist(),
            "normal": self.normal.tolist(),
            "margin": self.margin,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Crop":
        return cls(np.asarray(data["point"], float), np.asarray(data["normal"], float), float(data["margin"]))


@dataclass(frozen=True)
class Document:
    point_of_interest: np.ndarray
    normal: np.ndarray  # unit, towards the cameras
    crop: Crop
    size: tuple[float, float] | None  # extent in the plane, when masks told which points are the document
    plane_points: int  # sparse points on the plane
    corners: list[list[float]] | None = None  # the extent's rectangle, when `size` is known

    def to_json(self) -> dict[str, Any]:
        data = {
            "point_of_interest": self.point_of_interest.tolist(),
            "document_normal": self.normal.tolist(),
            "crop": self.crop.to_json(),
            "plane_points": self.plane_points,
        }
        if self.size is not None:
            data["document_size"] = list(self.size)
            data["document_corners"] = self.corners
        return data


def recorded_or_look_at(document: dict, camera_to_worlds: np.ndarray) -> np.ndarray:
    """The point of interest a dataset records (`nerftune.point_of_interest`), else where its cameras look."""
    if "point_of_interest" in document:
        return np.array(document["point_of_interest"], float)
    return look_at_point(camera_to_worlds[:, :3, 3], -camera_to_worlds[:, :3, 2])


def look_at_point(centres: np.ndarray, forwards: np.ndarray) -> np.ndarray:
    """The point nearest (least squares) to all optical axes: where the cameras look together."""
    forwards = forwards / np.linalg.norm(forwards, axis=1, keepdims=True)
    projectors = np.eye(3)[None] - forwards[:, :, None] * forwards[:, None, :]  # onto each axis' normal space
    return np.linalg.lstsq(projectors.sum(0), np.einsum("nij,nj->i", projectors, centres), rcond=None)[0]


def find_document(
    points: np.ndarray, camera_to_worlds: np.ndarray, masked: bool, rng: np.random.Generator | None = None
) -> Document:
    """Estimate the document from sparse `points` (N, 3) and OpenGL camera-to-world matrices (M, 4, 4)."""
    rng = rng or np.random.default_rng(0)
    centres, forwards = camera_to_worlds[:, :3, 3], -camera_to_worlds[:, :3, 2]
    target = look_at_point(centres, forwards)
    scale = float(np.median(np.linalg.norm(centres - target, axis=1)))
    if len(points) < 3:
        raise ValueError(f"only {len(points)} sparse points: too few to find the document's plane")
    planes = dominant_planes(points, PLANE_TOLERANCE * scale, rng)
    if masked:
        inliers = planes[0]
    else:
        inliers = min(planes, key=lambda mask: abs(_distance(target, *fit_plane(points[mask]))))
    origin, normal = fit_plane(points[inliers])
    if np.mean((centres - origin) @ normal) < 0:
        normal = -normal
    size = corners = None
    if masked:
        centre, size, axes = _extent(points[inliers], origin, normal)
        corners = corners_json(centre, axes, size)
    else:
        centre = target - _distance(target, origin, normal) * normal
    crop = Crop(centre, normal, CROP_MARGIN * scale)
    return Document(centre, normal, crop, size, int(inliers.sum()), corners)


def dominant_planes(points: np.ndarray, tolerance: float, rng: np.random.Generator, iterations: int = 500):
    """Inlier masks of up to MAX_PLANES planes found one after another by RANSAC, the largest first."""
    remaining = np.ones(len(points), bool)
    planes = []
    while len(planes) < MAX_PLANES and remaining.sum() >= 3:
        candidates = np.flatnonzero(remaining)
        best = np.zeros(len(points), bool)
        for _ in range(iterations):
            a, b, c = points[rng.choice(candidates, 3, replace=False)]
            normal = np.cross(b - a, c - a)
            if np.linalg.norm(normal) < 1e-12:
                continue
            normal /= np.linalg.norm(normal)
            inliers = remaining & (np.abs((points - a) @ normal) <= tolerance)
            if inliers.sum() > best.sum():
                best = inliers
        if best.sum() < max(3, MIN_PLANE_SHARE * len(points)):
            break
        planes.append(best)
        remaining &= ~best
    if not planes:
        raise ValueError("no plane supported by enough sparse points")
    return planes


def fit_plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares plane through `points`: (a point on it, its unit normal)."""
    origin = points.mean(axis=0)
    return origin, np.linalg.svd(points - origin)[2][-1]


def _distance(point: np.ndarray, origin: np.ndarray, normal: np.ndarray) -> float:
    return float((point - origin) @ normal)


def _extent(points: np.ndarray, origin: np.ndarray, normal: np.ndarray):
    """Centre, size and axes of the points' robust (2nd-98th percentile) extent along their two main in-plane axes."""
    flat = points - origin - np.outer((points - origin) @ normal, normal)
    axes = np.linalg.svd(flat - flat.mean(0))[2][:2]
    coords = flat @ axes.T
    low, high = np.percentile(coords, 2, axis=0), np.percentile(coords, 98, axis=0)
    centre = origin + ((low + high) / 2) @ axes
    return centre, (float(high[0] - low[0]), float(high[1] - low[1])), axes
