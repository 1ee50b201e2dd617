"""`data: {path: ..., downscale: N}`: trials train and score on a copy at 1/N of the size, intrinsics scaled, the
same frames, poses and test set; the copy is reused until its source changes."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nerftune import sweep
from nerftune.data.dataset import load_dataset, write_view
from nerftune.data.downscale import downscaled


def source_copy(scene_dir: Path, tmp_path: Path) -> Path:
    """The small scene (80x60), with a split file and one frame of a second lens (its own intrinsics)."""
    data = tmp_path / "card"
    shutil.copytree(scene_dir, data)
    transforms = json.loads((data / "transforms.json").read_text())
    transforms["frames"][5].update(fl_x=50.0, fl_y=50.0, cx=38.0, cy=31.0)
    (data / "transforms.json").write_text(json.dumps(transforms))
    (data / "split_indices.json").write_text(json.dumps({"train": list(range(1, 24, 2)), "test": [0, 10, 20]}))
    return data


def test_a_downscaled_copy_scales_images_and_intrinsics_and_keeps_frames_poses_and_test_set(scene_dir, tmp_path):
    source = load_dataset(source_copy(scene_dir, tmp_path))
    copy = load_dataset(downscaled(source, 2, tmp_path / "datasets"))
    assert copy.root.parent == tmp_path / "datasets" and copy.root.name.startswith("card-")
    assert copy.frame_names == source.frame_names and copy.test_indices == source.test_indices == [0, 10, 20]
    assert np.array_equal(copy.poses, source.poses)
    top = copy.transforms
    assert (top["w"], top["h"], top["fl_x"], top["cx"], top["cy"]) == (40, 30, source.transforms["fl_x"] / 2, 20, 15)
    assert copy.frames[5]["fl_x"] == 25.0 and copy.frames[5]["cx"] == 19.0 and copy.frames[5]["cy"] == 15.5
    assert top["nerftune"]["point_of_interest"] == source.transforms["nerftune"]["point_of_interest"], "in the world"
    frame, original = copy.frames[3], source.frames[3]
    photo = np.asarray(Image.open(copy.root / frame["file_path"]), float)
    full = np.asarray(Image.open(source.root / original["file_path"]), float)
    assert photo.shape == (30, 40, 3)
    assert np.abs(photo - full.reshape(30, 2, 40, 2, 3).mean(axis=(1, 3))).max() <= 1.0, "each 2x2 block averaged"
    mask = np.asarray(Image.open(copy.root / frame["document_mask_path"]))
    full_mask = np.asarray(Image.open(source.root / original["document_mask_path"]))
    assert mask.shape == (30, 40) and set(np.unique(mask)) <= set(np.unique(full_mask)), "no blended mask values"


def test_the_copy_is_reused_until_a_source_file_changes(scene_dir, tmp_path):
    data = source_copy(scene_dir, tmp_path)
    first = downscaled(load_dataset(data), 2, tmp_path / "datasets")
    image = first / "images" / "frame_00004.png"
    made = image.stat().st_mtime_ns
    assert downscaled(load_dataset(data), 2, tmp_path / "datasets") == first and image.stat().st_mtime_ns == made
    Image.new("RGB", (80, 60), (255, 0, 0)).save(data / "images" / "frame_00004.png")  # the frame taken again
    os.utime(data / "images" / "frame_00004.png", ns=(made + 10**9, made + 10**9))
    again = downscaled(load_dataset(data), 2, tmp_path / "datasets")
    assert again == first and np.asarray(Image.open(image))[0, 0].tolist() == [255, 0, 0]
    assert downscaled(load_dataset(data), 4, tmp_path / "datasets") != first, "each factor a copy of its own"


def test_a_copy_another_sweep_made_meanwhile_is_kept_as_it_is(scene_dir, tmp_path, monkeypatch):
    """Two sweeps starting at once on new data both make the copy; the second leaves the first's in place, which the
    first may be reading."""
    from nerftune.data import downscale

    data = load_dataset(source_copy(scene_dir, tmp_path))
    made = downscaled(data, 2, tmp_path / "datasets")  # by the other sweep, while this one was making its own
    stamp = (made / "images" / "frame_00004.png").stat().st_mtime_ns
    real, looks = downscale._is_current, []

    def is_current(copy: Path, made_from: dict) -> bool:  # the first look came before the other's copy was complete
        looks.append(copy)
        return len(looks) > 1 and real(copy, made_from)

    monkeypatch.setattr(downscale, "_is_current", is_current)
    assert downscaled(data, 2, tmp_path / "datasets") == made
    assert len(looks) == 2, "it made its own copy, then looked again"
    assert (made / "images" / "frame_00004.png").stat().st_mtime_ns == stamp, "not replaced"
    assert [p.name for p in (tmp_path / "datasets").iterdir()] == [made.name], "its own copy removed"


def test_a_spec_trains_on_the_copy_and_its_plan_says_so(scene_dir, write_spec, tmp_path, capsys):
    data = source_copy(scene_dir, tmp_path)
    spec = write_spec(f"name: small\ndata: {{path: {data}, downscale: 2}}\nspace: {{steps: 10}}\n")
    assert sweep.main([str(spec), "--dry-run", "--storage", str(tmp_path / "sweeps")]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("data: ")]
    assert line.startswith(f"data: {tmp_path / 'sweeps' / '_datasets'}/card-") and "-x2 (24 frames of 40x30, " in line
    assert f"downscaled from {data}: 12 in the training pool, 3 test frames" in line


def test_a_paths_file_made_for_the_data_renders_its_copy_at_the_copys_size(scene_dir, write_spec, tmp_path):
    from nerftune.cli import main
    from nerftune.preflight import prepare

    data = source_copy(scene_dir, tmp_path)
    assert main(["paths", str(data), "--views", "2", "--out", str(tmp_path / "card_paths.json")]) == 0
    spec = write_spec(f"name: p\ndata: {{path: {data}, downscale: 2}}\nspace: {{steps: 10}}\nrender: {{paths: "
                      f"{tmp_path / 'card_paths.json'}}}\n")
    views = prepare(spec, tmp_path / "sweeps").largest_scene.camera_paths
    assert (views["render_width"], views["render_height"]) == (40, 30), "the paths file says 80x60"


@pytest.mark.slow
def test_nerfacto_trains_and_scores_on_a_downscaled_copy(scene_dir, tmp_path):
    from nerftune.nerf.config import build_config
    from nerftune.nerf.loop import NerfTrainer

    dataset = load_dataset(downscaled(load_dataset(source_copy(scene_dir, tmp_path)), 2, tmp_path / "datasets"))
    view = write_view(dataset, dataset.train_indices(12), tmp_path / "view")
    run = NerfTrainer(build_config("nerfacto", view, tmp_path / "out", 30, 0, "cpu", "tiny"))
    run.train(30)
    scored = run.evaluate(previews=1)
    assert scored.images == 3 and scored.metrics["psnr"] > 5
    assert scored.previews[0].shape == (30, 120, 3), "the preview strip of 40x30 panels"
