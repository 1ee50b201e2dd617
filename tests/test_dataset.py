"""The synthetic scene, dataset checks and per-trial views (checked with nerfstudio's own dataparser)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nerftune.data.dataset import load_dataset, write_view
from nerftune.data.synthetic import POINT_OF_INTEREST, SceneOptions, camera_poses
from nerftune.errors import InputError


def test_synthetic_scene_is_a_complete_nerfstudio_dataset(scene_dir):
    transforms = json.loads((scene_dir / "transforms.json").read_text())
    assert len(transforms["frames"]) == 24
    assert transforms["nerftune"]["point_of_interest"] == list(POINT_OF_INTEREST)
    image = np.asarray(Image.open(scene_dir / transforms["frames"][3]["file_path"]))
    mask = np.asarray(Image.open(scene_dir / transforms["frames"][3]["document_mask_path"]))
    assert image.shape == (60, 80, 3) and image.std() > 20, "a textured image, not a flat colour"
    assert 0.02 < (mask > 0).mean() < 0.6, "the card covers part of the view"


def test_cameras_look_at_the_card():
    poses = camera_poses(SceneOptions(frames=10))
    for pose in poses:
        to_card = np.array(POINT_OF_INTEREST) - pose[:3, 3]
        forward = -pose[:3, 2]
        angle = np.degrees(np.arccos(forward @ to_card / np.linalg.norm(to_card)))
        assert angle < 5, "the handheld wobble keeps the card near the centre"


def test_fixed_test_split_and_recorded_hash(scene_dir):
    dataset = load_dataset(scene_dir, test_every=8)
    assert dataset.test_indices == [0, 8, 16]
    assert len(dataset.pool) == 21
    assert dataset.test_hash == load_dataset(scene_dir, test_every=8).test_hash
    assert dataset.test_hash != load_dataset(scene_dir, test_every=4).test_hash


def test_split_indices_file_overrides_the_interval(scene_dir, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(scene_dir, copy)
    (copy / "split_indices.json").write_text(json.dumps({"train": list(range(0, 20)), "test": [21, 23]}))
    dataset = load_dataset(copy)
    assert dataset.test_indices == [21, 23]
    assert dataset.pool == list(range(20))
    (copy / "split_indices.json").write_text(json.dumps({"train": [1, 2], "test": [2]}))
    with pytest.raises(InputError, match="shares frames with train"):
        load_dataset(copy)


def test_views_keep_every_frame_so_nerfstudio_normalises_poses_identically(scene_dir, tmp_path):
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    dataset = load_dataset(scene_dir)
    outputs = {}
    for count in (2, 21):
        chosen = dataset.train_indices(count)
        view = write_view(dataset, chosen, tmp_path / f"view{count}")
        transforms = json.loads((view / "transforms.json").read_text())
        assert len(transforms["frames"]) == 24
        assert transforms["val_filenames"] == transforms["test_filenames"]
        assert all(Path(frame["file_path"]).is_absolute() for frame in transforms["frames"])
        parser = NerfstudioDataParserConfig(data=view, downscale_factor=1).setup()
        outputs[count] = {split: parser.get_dataparser_outputs(split) for split in ("train", "test")}
        assert len(outputs[count]["train"].image_filenames) == count
        assert [p.name for p in outputs[count]["test"].image_filenames] == [
            Path(name).name for name in dataset.test_names
        ]
    # the test cameras land in the same normalised frame whatever the training subset
    a, b = (outputs[c]["test"].cameras.camera_to_worlds for c in (2, 21))
    assert np.allclose(a.numpy(), b.numpy(), atol=1e-5)


def _broken_copy(scene_dir: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(scene_dir, copy)
    transforms = json.loads((copy / "transforms.json").read_text())
    edit(copy, transforms)
    (copy / "transforms.json").write_text(json.dumps(transforms))
    return copy


BROKEN = {
    "no frames": (lambda d, t: t.update(frames=[]), "no frames listed"),
    "no pose": (lambda d, t: t["frames"][2].pop("transform_matrix"), "frames[2].transform_matrix"),
    "duplicate frame": (lambda d, t: t["frames"].append(dict(t["frames"][0])), "is listed twice"),
    "missing image": (lambda d, t: (d / t["frames"][1]["file_path"]).unlink(), "does not exist"),
    "broken image": (lambda d, t: (d / t["frames"][1]["file_path"]).write_bytes(b"not a png"), "unreadable image"),
    "no intrinsics": (lambda d, t: t.pop("fl_x"), "fl_x"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_dataset_is_one_clear_line(case, scene_dir, tmp_path):
    edit, message = BROKEN[case]
    data = _broken_copy(scene_dir, tmp_path, edit)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_dataset(data)


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist") as missing:
        load_dataset(tmp_path / "nowhere")
    assert f"`nerftune prepare VIDEO --out {tmp_path / 'nowhere'}`" in str(missing.value), "how to make it"
    tmp_path.joinpath("empty").mkdir()
    with pytest.raises(InputError, match="transforms.json: missing"):
        load_dataset(tmp_path / "empty")
