"""Camera paths around the document and how novel each view is. Pure geometry: numpy only.

Lengths are relative: a radius or distance of 1.0 is the training cameras' median distance to the point of interest,
so `--radii 0.2,0.4 --distances 1.0,1.6` means the same on every capture whatever SfM's arbitrary scale. A circle of
radius r at distance d views the document at atan(r / d) from its normal; a larger d makes the document smaller in
the image. Matrices are OpenGL camera-to-world (x right, y up, looking down -z), nerfstudio's convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Novelty: an angle of NOVELTY_ANGLE_DEG or a distance of NOVELTY_DISTANCE (relative) to the nearest training camera
# make a view 1 - 1/e (0.63) novel; 0 is a training view.
NOVELTY_ANGLE_DEG = 15.0
NOVELTY_DISTANCE = 0.25
ON_TRAJECTORY = 0.2  # novelty below which a view counts as on the training trajectory
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
    poi, normal = np.asarray(point_of_interest, float), _unit(np.asarray(normal, float))
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
    """`views` poses along the training cameras in order: positions linear, rotations spherical (slerp)."""
    if len(poses) == 1:
        return np.repeat(poses, views, axis=0)
    out = []
    for t in np.linspace(0, len(poses) - 1, views):
        i = min(int(t), len(poses) - 2)
        s = t - i
        pose = np.eye(4)
        pose[:3, :3] = _slerp(poses[i, :3, :3], poses[i + 1, :3, :3], s)
        pose[:3, 3] = (1 - s) * poses[i, :3, 3] + s * poses[i + 1, :3, 3]
        out.append(pose)
    return np.stack(out)


@dataclass(frozen=True)
class Novelty:
    angle_deg: float  # rotation between the view and its nearest training camera
    distance: float  # between their centres, relative (unit: the frame's)
    score: float  # in [0, 1): 0 = a training view
    label: str  # "on", "inside" or "outside" the training trajectory
    nearest: int  # index of the nearest training camera


def novelty(pose: np.ndarray, training_poses: np.ndarray, frame: Frame) -> Novelty:
    """How far a view is from what the model was trained on (see the constants above for the scale)."""
    angles = np.array([_rotation_angle_deg(pose[:3, :3], t[:3, :3]) for t in training_poses])
    distances = np.linalg.norm(training_poses[:, :3, 3] - pose[:3, 3], axis=1) / frame.unit
    combined = np.hypot(angles / NOVELTY_ANGLE_DEG, distances / NOVELTY_DISTANCE)
    nearest = int(np.argmin(combined))
    score = float(1.0 - math.exp(-combined[nearest]))
    return Novelty(
        float(angles[nearest]), float(distances[nearest]), score, _label(pose, training_poses, frame, score), nearest
    )


def _label(pose: np.ndarray, training_poses: np.ndarray, frame: Frame, score: float) -> str:
    """`on` near a training camera; `inside` when the view looks at the document from no farther off its normal than
    the training cameras at that azimuth (inside the trajectory seen from the document); `outside` otherwise."""
    if score < ON_TRAJECTORY:
        return "on"
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


def _rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(np.clip((np.trace(a.T @ b) - 1) / 2, -1.0, 1.0)))


def _slerp(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    """Rotation a * (a^T b)^s, by the axis-angle of the relative rotation."""
    relative = a.T @ b
    angle = math.acos(np.clip((np.trace(relative) - 1) / 2, -1.0, 1.0))
    if angle < 1e-9:
        return a
    axis = np.array([relative[2, 1] - relative[1, 2], relative[0, 2] - relative[2, 0], relative[1, 0] - relative[0, 1]])
    if np.linalg.norm(axis) < 1e-9:  # a half turn: the axis is the eigenvector of eigenvalue 1
        axis = np.linalg.eigh(relative + relative.T)[1][:, -1]
    k = _unit(axis)
    skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    theta = s * angle
    return a @ (np.eye(3) + math.sin(theta) * skew + (1 - math.cos(theta)) * skew @ skew)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)
