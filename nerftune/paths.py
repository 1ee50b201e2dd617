"""Camera paths around the document and how novel each view is. Pure geometry: numpy and scipy's rotations.

Lengths are relative: a radius or distance of 1.0 is the training cameras' median distance to the point of interest,
so `--radii 0.2,0.4 --distances 1.0,1.6` means the same on every capture whatever SfM's arbitrary scale. A circle of
radius r at distance d views the document at atan(r / d) from its normal; a larger d makes the document smaller in
the image. Matrices are OpenGL camera-to-world (x right, y up, looking down -z), nerfstudio's convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

# Novelty: an angle of NOVELTY_ANGLE_DEG or a distance of NOVELTY_DISTANCE (relative) to the nearest training camera
# make a view 1 - 1/e (0.63) novel; 0 is a training view.
NOVELTY_ANGLE_DEG = 15.0
NOVELTY_DISTANCE = 0.25
ON_TRAJECTORY = 0.2  # novelty, measured against the training path, below which a view is on that path
PATH_SAMPLES = 16  # poses per segment of the training path when measuring a view's distance to it
AZIMUTH_WINDOW_DEG = 20.0  # training cameras this close in azimuth around the normal decide inside / outside


@dataclass(frozen=True)
class Frame:
    """The document's frame: its centre, unit normal (towards the cameras), an in-plane `up`, and the length unit."""

    point_of_interest: np.ndarray
    normal: np.ndarray
    up: np.ndarray  # in the plane, perpendicular to normal: where the training images' "up" points on average
    unit: float  # the training cameras' median distance to the point of interest

    @property
    def right(self) -> np.ndarray:
        return np.cross(self.up, self.normal)


def document_frame(point_of_interest, normal, training_poses: np.ndarray) -> Frame:
    """The frame of a document at `point_of_interest`; without a known `normal` (None), the one towards the
    training cameras' mean centre."""
    poi = np.asarray(point_of_interest, float)
    normal = _unit(np.asarray(normal, float) if normal is not None else training_poses[:, :3, 3].mean(0) - poi)
    up = training_poses[:, :3, 1].mean(axis=0)
    up = up - (up @ normal) * normal
    if np.linalg.norm(up) < 1e-6:  # cameras looking straight down at the document: any in-plane axis will do
        up = np.cross(normal, [1.0, 0.0, 0.0] if abs(normal[0]) < 0.9 else [0.0, 1.0, 0.0])
    unit = float(np.median(np.linalg.norm(training_poses[:, :3, 3] - poi, axis=1)))
    return Frame(poi, normal, _unit(up), unit)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The camera-to-world matrix of a camera at `eye` looking at `target`, its image up as near `up` as can be."""
    back = _unit(eye - target)
    right = np.cross(up, back)
    if np.linalg.norm(right) < 1e-9:  # looking along `up`: pick any perpendicular
        right = np.cross(back, [1.0, 0.0, 0.0] if abs(back[0]) < 0.9 else [0.0, 1.0, 0.0])
    right = _unit(right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, np.cross(back, right), back, eye
    return pose


def circle(frame: Frame, radius: float, distance: float, views: int) -> np.ndarray:
    """`views` cameras evenly on a circle of `radius` around the normal axis, `distance` above the document (both
    relative), each looking at the point of interest with its image up along the document's up. (views, 4, 4)"""
    centre = frame.point_of_interest + distance * frame.unit * frame.normal
    poses = []
    for k in range(views):
        angle = 2 * math.pi * k / views
        offset = radius * frame.unit * (math.cos(angle) * frame.right + math.sin(angle) * frame.up)
        poses.append(look_at(centre + offset, frame.point_of_interest, frame.up))
    return np.stack(poses)


def circles(frame: Frame, radii: list[float], distances: list[float], views: int) -> list[tuple[str, np.ndarray]]:
    """Every (distance, radius) circle, named like `d1.0_r0.2`."""
    return [(f"d{d:g}_r{r:g}", circle(frame, r, d, views)) for d in distances for r in radii]


def interpolate_trajectory(poses: np.ndarray, views: int) -> np.ndarray:
    """`views` poses along the cameras in order: positions linear, rotations spherical (scipy's Slerp)."""
    if len(poses) == 1:
        return np.repeat(poses, views, axis=0)
    knots = np.arange(len(poses))
    times = np.linspace(0, len(poses) - 1, views)
    out = np.tile(np.eye(4), (views, 1, 1))
    out[:, :3, :3] = Slerp(knots, Rotation.from_matrix(poses[:, :3, :3]))(times).as_matrix()
    out[:, :3, 3] = np.stack([np.interp(times, knots, poses[:, axis, 3]) for axis in range(3)], axis=1)
    return out


@dataclass(frozen=True)
class Novelty:
    angle_deg: float  # rotation between the view and its nearest training camera
    distance: float  # between their centres, relative (unit: the frame's)
    score: float  # in [0, 1): 0 = a training view
    label: str  # "on", "inside" or "outside" the training trajectory
    nearest: int  # index of the nearest training camera


def novelty(pose: np.ndarray, training_poses: np.ndarray, frame: Frame) -> Novelty:
    """How far a view is from what the model was trained on (see the constants above for the scale).

    The score is against the nearest training camera; whether the view is `on` the training trajectory is decided
    against the path through the training cameras in their order (a view between two of them is on it)."""
    angles, distances = _separation(pose, training_poses, frame)
    combined = np.hypot(angles / NOVELTY_ANGLE_DEG, distances / NOVELTY_DISTANCE)
    nearest = int(np.argmin(combined))
    score = float(1.0 - math.exp(-combined[nearest]))
    label = "on" if path_novelty(pose, training_poses, frame) < ON_TRAJECTORY else _side(pose, training_poses, frame)
    return Novelty(float(angles[nearest]), float(distances[nearest]), score, label, nearest)


def path_novelty(pose: np.ndarray, training_poses: np.ndarray, frame: Frame) -> float:
    """The novelty score against the nearest pose of the training path (the cameras joined in order, positions
    linear and orientations spherical between neighbours), sampled PATH_SAMPLES times per segment."""
    path = interpolate_trajectory(training_poses, (len(training_poses) - 1) * PATH_SAMPLES + 1)
    angles, distances = _separation(pose, path, frame)
    return float(1.0 - math.exp(-np.hypot(angles / NOVELTY_ANGLE_DEG, distances / NOVELTY_DISTANCE).min()))


def _separation(pose: np.ndarray, others: np.ndarray, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Rotation angle (degrees) and relative distance from `pose` to each of `others`."""
    relative = np.einsum("ji,njk->nik", pose[:3, :3], others[:, :3, :3])  # pose^T @ other
    cosine = np.clip((np.trace(relative, axis1=1, axis2=2) - 1) / 2, -1.0, 1.0)
    distances = np.linalg.norm(others[:, :3, 3] - pose[:3, 3], axis=1) / frame.unit
    return np.degrees(np.arccos(cosine)), distances


def _side(pose: np.ndarray, training_poses: np.ndarray, frame: Frame) -> str:
    """`inside` when the view looks at the document from no farther off its normal than the training cameras at
    that azimuth (inside the trajectory seen from the document); `outside` otherwise."""
    tilt, azimuth = _polar(pose[:3, 3], frame)
    train_tilt, train_azimuth = np.array([_polar(t[:3, 3], frame) for t in training_poses]).T
    gap = np.abs((train_azimuth - azimuth + 180.0) % 360.0 - 180.0)
    around = train_tilt[gap <= AZIMUTH_WINDOW_DEG]
    return "inside" if len(around) and tilt <= around.max() else "outside"


def _polar(position: np.ndarray, frame: Frame) -> tuple[float, float]:
    """Angle from the document's normal and azimuth around it (degrees) of a camera position."""
    v = position - frame.point_of_interest
    tilt = math.degrees(math.acos(np.clip(_unit(v) @ frame.normal, -1.0, 1.0)))
    azimuth = math.degrees(math.atan2(v @ frame.up, v @ frame.right))
    return tilt, azimuth


def camera_path_json(poses: np.ndarray, fov_y_deg: float, width: int, height: int, fps: float = 10.0) -> dict:
    """nerfstudio's camera-path format (as `ns-render camera-path` and `get_path_from_json` read it)."""
    return {
        "camera_type": "perspective",
        "render_height": int(height),
        "render_width": int(width),
        "seconds": len(poses) / fps,
        "camera_path": [
            {"camera_to_world": pose.reshape(-1).tolist(), "fov": fov_y_deg, "aspect": width / height} for pose in poses
        ],
    }


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)
