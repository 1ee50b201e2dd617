"""`poses: per_subset`: SfM on a trial's own frames, aligned to the global poses, with the test set left alone."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import refused_sweep, run_cli
from nerftune.data.align import pose_error, similarity
from nerftune.data.dataset import load_dataset, write_view
from nerftune.data.subset_poses import solve
from nerftune.data.synthetic import SceneOptions, intrinsics, render_view, write_scene
from nerftune.outcomes import SUBSET_SFM

SCENE = SceneOptions(frames=48, width=160, height=120)  # the demo's scene
# Centres within 3 % of the scene size, rotations within 2 degrees. Looser than test_prepare's 2 % for 48 frames: 12
# frames constrain SfM less, and multi-threaded matching and mapping vary between runs (1.2 % here, 2.1 % in one CI run).
BOUNDS = (0.03, 2.0)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("scene") / SCENE.name(), SCENE)


@pytest.mark.slow
def test_a_12_frame_subset_is_posed_by_its_own_sfm_and_aligned_to_the_global_poses(scene, tmp_path):
    dataset = load_dataset(scene, test_every=8)
    indices = dataset.train_indices(12)
    subset = solve(dataset, indices, tmp_path / "sfm")
    names = [dataset.frames[i]["file_path"] for i in indices]
    assert subset.frames == names and subset.registered == names, "every frame of this subset registers"
    truth = {frame["file_path"]: np.array(frame["transform_matrix"]) for frame in dataset.frames}
    aligned = [np.array(subset.poses[n]) for n in names]
    # aligned already: the identity is the best similarity left, and the recorded error is what remains
    fit = similarity(aligned, [truth[n] for n in names])
    assert fit.scale == pytest.approx(1, abs=1e-6) and np.allclose(fit.rotation, np.eye(3), atol=1e-6)
    remaining = pose_error(aligned, [truth[n] for n in names])
    assert remaining.within(*BOUNDS), remaining
    assert subset.record()["pose_error_position"] <= BOUNDS[0] and subset.record()["sfm_registered"] == 12
    assert subset.camera["fl_x"] == pytest.approx(dataset.transforms["fl_x"], rel=0.05), "its own focal length"

    view = json.loads(
        (write_view(dataset, indices, tmp_path / "view", subset.view_changes()) / "transforms.json").read_text()
    )
    assert "fl_x" not in view, "intrinsics move into the frames, where nerfstudio reads each frame's own"
    by_name = {Path(f["file_path"]).name: f for f in view["frames"]}
    for test_name in dataset.test_names:
        frame = by_name[Path(test_name).name]
        assert frame["transform_matrix"] == truth[test_name].tolist() and frame["fl_x"] == dataset.transforms["fl_x"]
    first = by_name[Path(names[0]).name]
    assert first["transform_matrix"] == subset.poses[names[0]] and first["fl_x"] == subset.camera["fl_x"]

    again = solve(dataset, indices, tmp_path / "sfm")
    assert again == subset, "a retried trial reads its SfM back instead of running it again"


@pytest.mark.slow
def test_too_few_frames_for_sfm_leave_the_subset_unposed(scene, tmp_path):
    dataset = load_dataset(scene, test_every=8)
    subset = solve(dataset, dataset.train_indices(2), tmp_path / "sfm")  # first and last: 140 degrees apart
    assert len(subset.registered) < 2 and subset.record()["pose_error_position"] is None


@pytest.mark.slow
def test_a_frames_sweep_over_both_pose_sources_records_the_subset_sfm(scene, write_spec, tmp_path):
    spec = write_spec(
        f"""\
        name: poses
        data: {scene}
        profile: tiny
        space:
          frames: 12
          poses: {{values: [global, per_subset]}}
          seed: 0
          steps: 40
        search: {{algorithm: grid}}
        scheduler: {{type: none}}
        resources: {{cpu: 1, gpu: 0}}
        eval: {{max_images: 1}}
        tracking: {{enabled: false}}
        """
    )
    result = run_cli(str(spec), "--storage", str(tmp_path / "sweeps"))
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "sweeps" / "poses" / "results.csv").set_index("poses")
    assert set(table.index) == {"global", "per_subset"}
    assert (table.stop_reason == "completed").all() and (table.best_psnr > 5).all()
    assert table.loc["per_subset", "sfm_registered"] == table.loc["per_subset", "frames_used"] == 12
    assert table.loc["per_subset", "pose_error_position"] <= BOUNDS[0]
    assert pd.isna(table.loc["global", "sfm_registered"]), "global poses run no SfM"
    assert set(SUBSET_SFM) <= set(table.columns)


def refused_per_subset(data: Path, write_spec, tmp_path: Path) -> str:
    """The one line a sweep of `poses: per_subset` on `data` is refused with."""
    spec = write_spec(
        f"""\
        name: poses
        data: {data}
        space: {{frames: 6, poses: {{values: [per_subset]}}, steps: 10}}
        """
    )
    return refused_sweep(spec, tmp_path / "sweeps", "poses")


def test_per_subset_on_data_without_the_original_frames_is_one_line(scene, write_spec, tmp_path):
    data = tmp_path / "downloaded"
    shutil.copytree(scene, data)
    transforms = json.loads((data / "transforms.json").read_text())
    transforms["nerftune"]["source"] = "somewhere else"  # a nerfstudio dataset from elsewhere: poses, no capture
    (data / "transforms.json").write_text(json.dumps(transforms))
    line = refused_per_subset(data, write_spec, tmp_path)
    assert "space.poses" in line and "original frames" in line and "nerftune prepare" in line, line


def with_intrinsics_per_frame(scene: Path, out: Path, lens_of_frame) -> Path:
    """A copy of the scene whose frames carry their own intrinsics: `lens_of_frame(k)`'s scene options, rendered
    again where they are not the scene's."""
    shutil.copytree(scene, out)
    transforms = json.loads((out / "transforms.json").read_text())
    for key in ("fl_x", "fl_y", "cx", "cy"):
        transforms.pop(key)
    for k, frame in enumerate(transforms["frames"]):
        lens = lens_of_frame(k)
        if lens != SCENE:
            Image.fromarray(render_view(np.array(frame["transform_matrix"]), lens)[0]).save(out / frame["file_path"])
        frame.update(intrinsics(lens))
    (out / "transforms.json").write_text(json.dumps(transforms))
    return out


@pytest.mark.slow
def test_a_subset_of_two_lenses_maps_a_camera_per_lens(scene, tmp_path):
    """Frames 16 to 31 taken with a 75-degree lens, the others with the scene's 50-degree one (as `nerftune prepare`
    writes a capture of two lenses): the subset's SfM finds each lens's focal length, and poses as accurate as one
    lens's. With one camera for both, the same 16 frames came out 17 % of the scene and 4.7 degrees off."""
    wide = replace(SCENE, fov_y_deg=75.0)
    data = with_intrinsics_per_frame(scene, tmp_path / "two_lenses", lambda k: wide if 16 <= k < 32 else SCENE)
    dataset = load_dataset(data, test_every=8)
    subset = solve(dataset, dataset.train_indices(16), tmp_path / "sfm")
    truth = {frame["file_path"]: frame for frame in dataset.frames}
    assert len(subset.registered) >= 15 and any(truth[n]["fl_x"] < 100 for n in subset.registered), "both lenses"
    for name in subset.registered:
        assert subset.intrinsics(name)["fl_x"] == pytest.approx(truth[name]["fl_x"], rel=0.05), name
    poses = [np.array(subset.poses[n]) for n in subset.registered]
    error = pose_error(poses, [np.array(truth[n]["transform_matrix"]) for n in subset.registered])
    assert error.within(*BOUNDS), error
    written = write_view(dataset, dataset.train_indices(16), tmp_path / "view", subset.view_changes())
    view = json.loads((written / "transforms.json").read_text())
    by_name = {Path(frame["file_path"]).name: frame for frame in view["frames"]}
    for name in subset.registered:
        assert by_name[Path(name).name]["fl_x"] == subset.intrinsics(name)["fl_x"], "each frame its lens's"
    assert solve(dataset, dataset.train_indices(16), tmp_path / "sfm") == subset, "read back with its cameras"


def test_per_subset_on_data_of_a_camera_per_frame_is_one_line(scene, write_spec, tmp_path):
    zooming = lambda k: replace(SCENE, fov_y_deg=40.0 + k)  # noqa: E731  a zoom lens moving through the capture
    data = with_intrinsics_per_frame(scene, tmp_path / "zoom", zooming)
    line = refused_per_subset(data, write_spec, tmp_path)
    assert "space.poses: per_subset maps each lens as one camera" in line and "48 frames 48 different" in line, line
