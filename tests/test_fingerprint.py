"""A dataset's fingerprints follow its content (images, masks, cameras), not its file names or its folder."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from nerftune.data.dataset import load_dataset, require_content
from nerftune.data.fingerprint import changes


def _copy(scene_dir, tmp_path, name="data"):
    copy = tmp_path / name
    shutil.copytree(scene_dir, copy)
    return copy


def _edit_transforms(folder, edit):
    path = folder / "transforms.json"
    transforms = json.loads(path.read_text())
    edit(transforms)
    path.write_text(json.dumps(transforms))


def _darken(path):
    pixels = np.asarray(Image.open(path)).astype(np.int16)
    Image.fromarray(np.clip(pixels - 8, 0, 255).astype(np.uint8)).save(path)


def test_a_moved_or_reordered_copy_keeps_its_fingerprints(scene_dir, tmp_path):
    original = load_dataset(scene_dir)
    copy = _copy(scene_dir, tmp_path)
    _edit_transforms(copy, lambda t: t["frames"].reverse())
    moved = load_dataset(copy)
    assert (moved.test_hash, moved.data_hash) == (original.test_hash, original.data_hash)
    assert len(original.test_hash) == 16 and original.test_hash != original.data_hash


def test_same_names_other_images_are_another_test_set(scene_dir, tmp_path):
    """What a hash of names missed: every prepared capture names its frames images/frame_00000.png, ..."""
    original = load_dataset(scene_dir)
    copy = _copy(scene_dir, tmp_path)
    test_frame = original.frames[original.test_indices[1]]
    _darken(copy / test_frame["file_path"])
    edited = load_dataset(copy)
    assert edited.test_names == original.test_names
    assert edited.test_hash != original.test_hash and edited.data_hash != original.data_hash
    assert changes(original.frame_digests, edited.frame_digests) == {
        "changed": [test_frame["file_path"]],
        "added": [],
        "removed": [],
    }


def test_a_training_frame_changes_the_data_not_the_test_set(scene_dir, tmp_path):
    original = load_dataset(scene_dir)
    copy = _copy(scene_dir, tmp_path)
    training = original.frames[original.pool[2]]["file_path"]

    def move_camera(transforms):
        frame = next(f for f in transforms["frames"] if f["file_path"] == training)
        frame["transform_matrix"][0][3] += 0.01

    _edit_transforms(copy, move_camera)
    edited = load_dataset(copy)
    assert edited.test_hash == original.test_hash
    assert edited.data_hash != original.data_hash
    assert changes(original.frame_digests, edited.frame_digests)["changed"] == [training]


def test_shared_intrinsics_masks_and_removed_frames_count(scene_dir, tmp_path):
    original = load_dataset(scene_dir)
    copy = _copy(scene_dir, tmp_path, "focal")
    _edit_transforms(copy, lambda t: t.update(fl_x=t["fl_x"] * 1.01))
    assert load_dataset(copy).test_hash != original.test_hash, "the shared focal length is every frame's camera"

    copy = _copy(scene_dir, tmp_path, "mask")
    mask = original.frames[original.test_indices[0]]["document_mask_path"]
    _darken(copy / mask)
    assert load_dataset(copy).test_hash != original.test_hash, "a test frame's mask is part of it"

    copy = _copy(scene_dir, tmp_path, "fewer")
    last = original.frame_names[-1]
    _edit_transforms(copy, lambda t: t.update(frames=[f for f in t["frames"] if f["file_path"] != last]))
    assert changes(original.frame_digests, load_dataset(copy).frame_digests)["removed"] == [last]


def test_a_trial_refuses_data_other_than_the_sweeps(scene_dir, tmp_path):
    """What every trial checks first (a node's stale copy at the shared path gives these same bytes and names)."""
    original = load_dataset(scene_dir)
    require_content(original, original.data_hash)
    stale = _copy(scene_dir, tmp_path, "stale")
    _darken(stale / original.frame_names[5])
    with pytest.raises(RuntimeError, match=f"is not the data the sweep started with .* not {original.data_hash}"):
        require_content(load_dataset(stale), original.data_hash)
