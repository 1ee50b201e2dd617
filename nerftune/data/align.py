"""Similarity alignment of two sets of camera poses of the same frames, and how far apart they are after it.

SfM fixes a reconstruction only up to a similarity (scale, rotation, shift). To compare two reconstructions of the
same frames (SfM against the truth, a frame subset's SfM against the whole capture's, global against incremental
mapping), one is mapped onto the other by the similarity that fits their cameras best; what remains is the error.
Poses are 4x4 camera-to-world matrices (either convention, as long as both sets use the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Similarity:
    scale: float
    rotation: np.ndarray  # (3, 3)
    shift: np.ndarray  # (3,)

    def apply(self, pose: np.ndarray) -> np.ndarray:
        """A camera-to-world pose carried into the target frame (its rotation turned, its centre moved)."""
        out = np.eye(4)
        out[:3, :3] = self.rotation @ pose[:3, :3]
        out[:3, 3] = self.scale * self.rotation @ pose[:3, 3] + self.shift
        return out

    def point(self, xyz: np.ndarray) -> np.ndarray:
        return self.scale * self.rotation @ np.asarray(xyz, float) + self.shift


@dataclass(frozen=True)
class PoseError:
    """The worst and mean disagreement of aligned cameras: centres as a fraction of the scene size (the extent of
    the target's camera centres), rotations in degrees."""

    max_position: float
    mean_position: float
    max_rotation_deg: float
    mean_rotation_deg: float

    def within(self, position: float, rotation_deg: float) -> bool:
        return self.max_position <= position and self.max_rotation_deg <= rotation_deg

    def to_json(self) -> dict[str, float]:
        return {k: round(float(v), 6) for k, v in vars(self).items()}


def similarity(source: Sequence[np.ndarray], target: Sequence[np.ndarray]) -> Similarity:
    """The similarity taking `source` poses onto `target` poses of the same frames (at least 2): the rotation is the
    chordal mean of the rotation differences, scale and shift fit the camera centres by least squares."""
    if len(source) != len(target) or len(source) < 2:
        raise ValueError(f"need the same >= 2 frames in both sets, got {len(source)} and {len(target)}")
    u, _, vt = np.linalg.svd(sum(t[:3, :3] @ s[:3, :3].T for s, t in zip(source, target)))
    rotation = u @ np.diag([1, 1, np.sign(np.linalg.det(u @ vt))]) @ vt
    turned = np.array([rotation @ s[:3, 3] for s in source])
    centres = np.array([t[:3, 3] for t in target])
    a, b = turned - turned.mean(0), centres - centres.mean(0)
    scale = float((a * b).sum() / max((a * a).sum(), 1e-300))
    return Similarity(scale, rotation, centres.mean(0) - scale * turned.mean(0))


def pose_error(
    source: Sequence[np.ndarray], target: Sequence[np.ndarray], scene_size: float | None = None
) -> PoseError:
    """Align `source` onto `target` and measure what is left; `scene_size` defaults to the target cameras' extent."""
    fit = similarity(source, target)
    centres = np.array([t[:3, 3] for t in target])
    size = scene_size or float(np.linalg.norm(centres.max(0) - centres.min(0))) or 1.0
    positions, angles = [], []
    for s, t in zip(source, target):
        aligned = fit.apply(s)
        positions.append(np.linalg.norm(aligned[:3, 3] - t[:3, 3]) / size)
        cos = (np.trace(aligned[:3, :3].T @ t[:3, :3]) - 1) / 2
        angles.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return PoseError(max(positions), float(np.mean(positions)), max(angles), float(np.mean(angles)))
