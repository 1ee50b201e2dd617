"""The mask-error study: masks corrupted exactly where asked, the test views near them scored apart, all recorded."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from PIL import Image

from conftest import refused_sweep, run_cli
from nerftune.data.dataset import load_dataset
from nerftune.trials import read_recipe
from nerftune.mask_error import chosen_frames, corrupt, nearest_training_frames, split_metrics
from test_tracking import artifact_paths, children_and_parent


def card_mask() -> np.ndarray:
    mask = np.zeros((60, 80), bool)
    mask[10:50, 20:70] = True  # a 40 x 50 document
    return mask


def test_a_corner_error_cuts_exactly_that_corner_of_the_document():
    mask = card_mask()
    changed = mask ^ corrupt(mask, "corner", 0.15)
    expected = np.zeros_like(mask)
    expected[10:16, 20:28] = True  # ceil(0.15 x 40) rows, ceil(0.15 x 50) columns from the top-left corner
    assert np.array_equal(changed, expected)


@pytest.mark.parametrize("kind", ["dilate", "erode"])
def test_dilation_and_erosion_change_only_a_band_of_the_requested_width(kind):
    mask = card_mask()
    radius = round(0.05 * math.hypot(40, 50))  # 3 pixels
    out = corrupt(mask, kind, 0.05)
    changed = mask ^ out
    if kind == "dilate":  # every pixel within `radius` steps (4-neighbourhood) of the document
        y, x = np.mgrid[:60, :80]
        steps = np.maximum.reduce([20 - x, x - 69, 0 * x]) + np.maximum.reduce([10 - y, y - 49, 0 * y])
        assert np.array_equal(out, steps <= radius) and not (changed & mask).any()
    else:
        shrunk = np.zeros_like(mask)
        shrunk[10 + radius : 50 - radius, 20 + radius : 70 - radius] = True
        assert np.array_equal(out, shrunk) and (changed <= mask).all()


def test_a_shift_moves_the_mask_right_by_the_requested_share_of_its_width():
    mask = card_mask()
    out = corrupt(mask, "shift", 0.1)
    assert np.array_equal(out, np.roll(mask, 5, axis=1)), "5 = 0.1 x 50 columns"
    assert np.array_equal(corrupt(mask, "none", 0), mask), "the clean baseline"


def test_the_corrupted_frames_lie_between_the_first_and_last_and_the_split_uses_their_neighbours(scene_dir):
    names = [f"images/frame_{i:05d}.png" for i in range(7)]
    assert chosen_frames(names, 1) == ["images/frame_00003.png"] and chosen_frames(names[:2], 2) == names[:2]
    assert chosen_frames(names, 2) == ["images/frame_00002.png", "images/frame_00004.png"]
    dataset = load_dataset(scene_dir, test_every=4)  # 24 frames on an arc: tests 0, 4, 8, 12, 16, 20
    train = [dataset.frames[i]["file_path"] for i in dataset.train_indices(6)]
    nearest = nearest_training_frames(dataset, train)
    centres = {f["file_path"]: np.array(f["transform_matrix"])[:3, 3] for f in dataset.frames}
    for test, chosen in nearest.items():  # on a smooth arc the nearest camera is the nearest centre
        assert chosen == min(train, key=lambda t: np.linalg.norm(centres[t] - centres[test]))
    per_view = {"a": {"psnr": 20.0}, "b": {"psnr": 30.0}, "c": {"psnr": 34.0}}
    assert split_metrics(per_view, {"a"}) == {"psnr_near_error": 20.0, "psnr_elsewhere": 32.0}


@pytest.mark.slow
def test_a_mask_error_sweep_scores_near_and_elsewhere_and_keeps_the_masks(scene_dir, write_spec, tmp_path):
    spec = write_spec(
        f"""\
        name: mask-errors
        data: {{path: {scene_dir}, test_every: 4}}
        profile: tiny
        space:
          frames: 6
          seed: 0
          steps: 40
          mask_error: {{values: [{{frames: 1, kind: none}}, {{frames: 1, kind: corner, size: 0.3}}]}}
        search: {{algorithm: grid}}
        scheduler: {{type: none}}
        resources: {{cpu: 1, gpu: 0}}
        tracking: {{images: none, checkpoints: none}}
        """
    )
    result = run_cli(str(spec), "--storage", str(tmp_path / "sweeps"))
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "mask-errors"
    table = pd.read_csv(sweep / "results.csv")
    corrupted = table[table.mask_error.str.contains("corner")].iloc[0]
    clean = table[table.mask_error.str.contains('"none"')].iloc[0]
    assert corrupted.mask_error_frames == clean.mask_error_frames == "frame_00014.png", "of 1, 5, 10, 14, 19, 23"
    for row in (corrupted, clean):  # the clean baseline is scored on the same views
        assert 5 < row.psnr_near_error < 60 and 5 < row.psnr_elsewhere < 60 and 5 < row.doc_psnr_near_error < 60

    (folder,) = [f for f in sweep.glob("train_trial_*") if "corner" in f.name]
    saved = np.asarray(Image.open(folder / "mask_error" / "frame_00014.png")) >= 128
    original = np.asarray(Image.open(scene_dir / "masks" / "frame_00014.png")) >= 128
    assert np.array_equal(saved, corrupt(original, "corner", 0.3)) and saved.sum() < original.sum()
    view = json.loads((folder / "dataset" / "transforms.json").read_text())
    masks = {Path(f["file_path"]).name: f["mask_path"] for f in view["frames"]}
    # relative to the view: Ray writes the trial in its session folder, then syncs it to the sweep's
    assert masks["frame_00014.png"] == "../mask_error/frame_00014.png"
    assert (folder / "dataset" / masks["frame_00014.png"]).is_file()
    assert read_recipe(folder).view_dir == str(folder / "dataset"), "eval and render read the synced view"
    assert masks["frame_00015.png"] == str((scene_dir / "masks" / "frame_00015.png").resolve())

    client = MlflowClient(f"sqlite:///{tmp_path / 'sweeps' / 'mlflow.db'}")
    children, _ = children_and_parent(client, "mask-errors")
    assert [r.data.params.get("mask_error_frames") for r in children] == ["frame_00014.png"] * 2
    (run,) = [r for r in children if "corner" in r.data.params["mask_error"]]
    assert "mask_error/frame_00014.png" in artifact_paths(client, run.info.run_id)
    assert {"psnr_near_error", "psnr_elsewhere"} <= set(run.data.metrics)


def test_more_corrupted_frames_than_a_trial_trains_on_is_one_line(scene_dir, write_spec, tmp_path):
    spec = write_spec(
        f"""\
        name: mask-errors
        data: {scene_dir}
        space:
          frames: {{values: [6, 12]}}
          steps: 10
          mask_error: {{values: [{{frames: 7, kind: erode, size: 0.1}}]}}
        """
    )
    line = refused_sweep(spec, tmp_path / "sweeps", "mask-errors")
    assert "space.mask_error: corrupts the masks of 7 frames, and a trial with frames=6 trains on only 6" in line
