"""Camera paths and novelty: pure geometry, plus the `nerftune paths` command on the synthetic scene."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from nerftune import paths
from nerftune.data.synthetic import POINT_OF_INTEREST, SceneOptions, camera_poses

TRAINING = camera_poses(SceneOptions(frames=24))
FRAME = paths.document_frame(POINT_OF_INTEREST, (0.0, 0.0, 1.0), TRAINING)


def angle_to_target_deg(pose: np.ndarray, target: np.ndarray) -> float:
    forward = -pose[:3, 2]
    to_target = (target - pose[:3, 3]) / np.linalg.norm(target - pose[:3, 3])
    return math.degrees(math.acos(np.clip(forward @ to_target, -1, 1)))


@settings(max_examples=40, deadline=None)
@given(
    radius=st.floats(0.0, 2.0),
    distance=st.floats(0.1, 3.0),
    views=st.integers(1, 24),
)
def test_every_circle_camera_is_at_its_radius_and_distance_looking_at_the_poi(radius, distance, views):
    poses = paths.circle(FRAME, radius, distance, views)
    assert poses.shape == (views, 4, 4)
    for pose in poses:
        offset = pose[:3, 3] - FRAME.point_of_interest
        height = offset @ FRAME.normal
        assert height == pytest.approx(distance * FRAME.unit, rel=1e-9)
        assert np.linalg.norm(offset - height * FRAME.normal) == pytest.approx(radius * FRAME.unit, abs=1e-9)
        assert angle_to_target_deg(pose, FRAME.point_of_interest) < 0.5
        assert np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-9), "a rotation"
        assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)


def test_circle_views_are_evenly_spread_around_the_axis():
    poses = paths.circle(FRAME, 0.3, 1.0, 8)
    azimuths = sorted(paths._polar(p[:3, 3], FRAME)[1] % 360 for p in poses)
    assert np.allclose(np.diff(azimuths), 45.0)


def test_unit_is_the_training_cameras_median_distance():
    distances = np.linalg.norm(TRAINING[:, :3, 3] - np.array(POINT_OF_INTEREST), axis=1)
    assert FRAME.unit == pytest.approx(np.median(distances))
    assert FRAME.up @ FRAME.normal == pytest.approx(0.0, abs=1e-12)


def test_path_round_trips_through_nerfstudios_loader():
    from nerfstudio.cameras.camera_paths import get_path_from_json

    poses = paths.circle(FRAME, 0.2, 1.0, 5)
    content = json.loads(json.dumps(paths.camera_path_json(poses, 50.0, 160, 120)))
    cameras = get_path_from_json(content)
    assert cameras.camera_to_worlds.shape == (5, 3, 4)
    assert np.allclose(cameras.camera_to_worlds.numpy(), poses[:, :3, :], atol=1e-6)
    assert cameras.width[0].item() == 160 and cameras.height[0].item() == 120
    assert cameras.fy[0].item() == pytest.approx(60 / math.tan(math.radians(25)), rel=1e-6)


def test_trajectory_interpolation_passes_through_the_training_cameras():
    path = paths.interpolate_trajectory(TRAINING, len(TRAINING))
    assert np.allclose(path, TRAINING, atol=1e-9)
    dense = paths.interpolate_trajectory(TRAINING, 100)
    assert all(np.allclose(p[:3, :3].T @ p[:3, :3], np.eye(3), atol=1e-9) for p in dense)


def test_novelty_is_zero_for_training_cameras_and_grows_with_distance():
    for pose in TRAINING[::5]:
        n = paths.novelty(pose, TRAINING, FRAME)
        assert n.score == pytest.approx(0.0, abs=1e-6) and n.label == "on"
    start = TRAINING[12]
    away = start[:3, 3] - FRAME.point_of_interest
    scores = []
    for factor in (1.0, 1.2, 1.5, 2.0, 3.0):
        moved = paths.look_at(FRAME.point_of_interest + factor * away, FRAME.point_of_interest, FRAME.normal)
        scores.append(paths.novelty(moved, TRAINING, FRAME).score)
    assert scores == sorted(scores) and scores[-1] > 0.9 and all(0 <= s < 1 for s in scores)


def test_labels_inside_and_outside_the_trajectory():
    middle = TRAINING[12][:3, 3] - FRAME.point_of_interest
    height = middle @ FRAME.normal
    across = (middle - height * FRAME.normal) / np.linalg.norm(middle - height * FRAME.normal)
    tilt = math.atan2(np.linalg.norm(middle - height * FRAME.normal), height)

    def view_at(tilt_rad: float) -> np.ndarray:
        eye = FRAME.point_of_interest + FRAME.unit * (math.cos(tilt_rad) * FRAME.normal + math.sin(tilt_rad) * across)
        return paths.look_at(eye, FRAME.point_of_interest, FRAME.up)

    assert paths.novelty(view_at(tilt / 3), TRAINING, FRAME).label == "inside", "steeper, nearer the normal"
    assert paths.novelty(view_at(tilt + math.radians(25)), TRAINING, FRAME).label == "outside", "flatter"
    behind = paths.circle(FRAME, 0.3, 1.0, 12)[3]  # the side of the card no training camera looks from
    assert paths.novelty(behind, TRAINING, FRAME).label == "outside"


def test_on_is_decided_by_the_training_path_not_the_nearest_camera():
    """A trial trained on every 4th camera: a view between two of them is on its path, one beside it is not."""
    subset = TRAINING[::4]
    between = paths.interpolate_trajectory(subset[2:4], 3)[1]  # halfway from one training camera to the next
    assert paths.novelty(subset[2], subset, FRAME).label == "on"
    mid = paths.novelty(between, subset, FRAME)
    assert mid.label == "on", "on the path between two training cameras"
    assert mid.score >= paths.ON_TRAJECTORY, "yet far enough from both cameras that the nearest one alone says no"
    assert paths.path_novelty(between, subset, FRAME) < 0.05
    offset = 0.4 * FRAME.unit * FRAME.normal  # the same orientation, lifted off the path towards the normal
    beside = between.copy()
    beside[:3, 3] += offset
    assert paths.novelty(beside, subset, FRAME).label != "on"
    assert paths.path_novelty(beside, subset, FRAME) > paths.ON_TRAJECTORY


def test_the_interpolated_training_trajectory_is_on_for_a_trial_with_all_frames():
    """What the demo's views.csv showed: the `trajectory` segment must read `on`, not `outside`."""
    for pose in paths.interpolate_trajectory(TRAINING, 9):
        assert paths.novelty(pose, TRAINING, FRAME).label == "on"


def run_paths(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nerftune", "paths", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_paths_command_writes_circles_trajectory_and_plot(scene_dir, tmp_path):
    out = tmp_path / "card_paths.json"
    result = run_paths(scene_dir, "--radii", "0.2,0.4", "--distances", "1.0,1.6", "--views", "9", "--out", out)
    assert result.returncode == 0, result.stderr
    content = json.loads(out.read_text())
    segments = content["nerftune"]["segments"]
    assert [s["name"] for s in segments] == ["d1_r0.2", "d1_r0.4", "d1.6_r0.2", "d1.6_r0.4", "trajectory"]
    assert len(content["camera_path"]) == 45 and content["render_width"] == 80 and content["render_height"] == 60
    assert content["nerftune"]["point_of_interest"] == list(POINT_OF_INTEREST), "the dataset's own POI"
    assert "crop" in content["nerftune"]
    assert out.with_suffix(".png").stat().st_size > 10_000


def test_paths_command_rejects_bad_numbers(scene_dir, tmp_path):
    result = run_paths(scene_dir, "--radii", "0.2,wide", "--out", tmp_path / "p.json")
    assert result.returncode == 2 and "--radii" in result.stderr and not (tmp_path / "p.json").exists()


def test_paths_of_a_capture_of_several_lenses_take_the_lens_of_most_frames(scene_dir, tmp_path):
    """As `nerftune prepare` writes several lenses: intrinsics per frame; here the first 3 of 24 frames are wider."""
    import shutil

    from nerftune.camera_paths import make_paths
    from nerftune.data.dataset import INTRINSIC_KEYS, load_dataset

    data = tmp_path / "lenses"
    shutil.copytree(scene_dir, data)
    transforms = json.loads((data / "transforms.json").read_text())
    shared = {k: transforms.pop(k) for k in INTRINSIC_KEYS if k in transforms}
    frames = sorted(transforms["frames"], key=lambda f: f["file_path"])
    for k, frame in enumerate(frames):
        frame.update(shared, **({"fl_x": shared["fl_x"] / 2, "fl_y": shared["fl_y"] / 2} if k < 3 else {}))
    (data / "transforms.json").write_text(json.dumps(transforms))
    dataset = load_dataset(data)
    assert dataset.main_camera == shared and dataset.image_size == (shared["w"], shared["h"])
    content = make_paths(dataset, [0.2], [1.0], 4)
    main_fov = math.degrees(2 * math.atan(shared["h"] / (2 * shared["fl_y"])))
    assert [view["fov"] for view in content["camera_path"]] == pytest.approx([main_fov] * 8), "not the first frame's"
