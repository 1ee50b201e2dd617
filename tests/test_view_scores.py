"""Each test view's scores beside its novelty for the trial (`test_view_scores.csv`), and the report's section that
reads them: bands of novelty per configuration with seed intervals, and the slope within each trial."""

import math

import numpy as np
import pandas as pd
import pytest

from nerftune.data.dataset import load_dataset
from nerftune.report import view_novelty
from nerftune.report.data import SweepData
from nerftune.spec import parse_spec
from nerftune.view_scores import VIEW_SCORES_FILE, ViewScores, novelty_of_test_views


def test_test_views_are_more_novel_for_a_trial_on_fewer_frames(scene_dir):
    dataset = load_dataset(scene_dir)
    few = [dataset.frame_names[i] for i in dataset.train_indices(3)]
    every = [dataset.frame_names[i] for i in dataset.pool]
    for_few, for_every = novelty_of_test_views(dataset, few), novelty_of_test_views(dataset, every)
    assert set(for_few) == set(for_every) == set(dataset.test_names)
    assert np.mean([v.score for v in for_few.values()]) > np.mean([v.score for v in for_every.values()]) + 0.2
    for name, view in for_every.items():  # its nearest training frame is a neighbour in the capture
        position = dataset.frame_names.index(name)
        assert abs(dataset.frame_names.index(every[view.nearest]) - position) == 1
        # a held-out frame between two training frames lies on the trajectory of a trial on them all
        between = min(dataset.pool) < position < max(dataset.pool)
        assert (view.label == "on") == between, (name, view)


def test_a_table_keeps_a_row_per_view_and_step_and_a_new_scoring_of_a_step_replaces_it(scene_dir, tmp_path):
    dataset = load_dataset(scene_dir)
    train = [dataset.frame_names[i] for i in dataset.train_indices(6)]
    scores = ViewScores.of(tmp_path, dataset, train)
    images = list(scores.names)
    first = {image: {"psnr": 20.0 + k, "ssim": 0.5, "lpips": math.nan} for k, image in enumerate(images)}
    scores.write(100, first)
    scores.write(200, {image: {"psnr": 25.0, "ssim": 0.7, "lpips": None} for image in images})
    scores.write(200, {image: {"psnr": 26.0, "ssim": 0.8, "lpips": None} for image in images})  # resumed, again

    table = pd.read_csv(tmp_path / VIEW_SCORES_FILE)
    assert list(table.columns) == [
        "step", "view", "psnr", "ssim", "novelty", "angle_deg", "distance", "label", "nearest_training_frame"
    ], "no lpips column: it was never measured"
    assert table.groupby("step").size().to_dict() == {100: len(images), 200: len(images)}
    assert (table[table.step == 200].psnr == 26.0).all()
    assert table[table.step == 100].set_index("view").psnr.to_dict() == {
        scores.names[image]: 20.0 + k for k, image in enumerate(images)
    }
    assert set(table.nearest_training_frame) <= set(train)
    assert table.novelty.between(0, 1).all()


SPEC = "name: s\ndata: synthetic:id-card\nspace: {frames: [6, 42], seed: [0, 1, 2], steps: 10}\nreplicates: seed\n"


def study_views(slope_per_unit: float = -10.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two frame counts x 3 seeds; psnr falls along novelty the same way for both, but the 6-frame trials see their
    views from farther away (novelty 0.3 to 0.9 against 0.05 to 0.45): alike at matched novelty."""
    trials, views = [], []
    for frames, (near, far) in ((42, (0.05, 0.45)), (6, (0.3, 0.9))):
        for seed in range(3):
            trial_id = f"f{frames}s{seed}"
            novelty = np.linspace(near, far, 9)
            psnr = 30.0 + slope_per_unit * novelty + 0.1 * (seed - 1)
            views.append(pd.DataFrame({"trial_id": trial_id, "step": 10, "view": range(9), "psnr": psnr,
                                       "novelty": novelty, "label": ["on"] * 8 + ["outside"]}))
            views.append(pd.DataFrame({"trial_id": trial_id, "step": 5, "view": range(9), "psnr": 0.0,
                                       "novelty": novelty}))  # an earlier scoring: not the trial's last
            trials.append({"trial_id": trial_id, "frames": frames, "seed": seed, "configuration": int(frames == 6),
                           "psnr": float(psnr.mean()), "stop_reason": "completed", "full_test": True})
    return pd.DataFrame(trials), pd.concat(views, ignore_index=True)


def test_the_section_compares_configurations_at_matched_novelty_and_finds_the_slope(tmp_path):
    trials, views = study_views()
    sweep = SweepData(tmp_path, parse_spec(SPEC), {}, trials, pd.DataFrame(), pd.DataFrame(), views)
    section = view_novelty.view_novelty_section(sweep, trials, tmp_path)

    assert section.title == "Test views by novelty (psnr)"
    assert section.figures == ["psnr_by_novelty.png"] and (tmp_path / "psnr_by_novelty.png").stat().st_size > 10_000
    table = pd.read_csv(tmp_path / "psnr_by_novelty.csv")
    assert (table.seeds == 3).all(), "every seed in every band it has views in"
    shared = table[table.band == "0.2 to 0.4"].set_index("frames")
    assert shared["mean"][42] == pytest.approx(shared["mean"][6], abs=0.5), "alike where their views are alike"
    assert trials.groupby("frames").psnr.mean()[42] > trials.groupby("frames").psnr.mean()[6] + 2, "not overall"
    assert set(table[table.frames == 6].band) == {"0.2 to 0.4", "0.4 to 0.6", "0.6 to 0.8", "0.8 to 1"}
    slopes = table.drop_duplicates("configuration").set_index("frames")
    assert slopes.slope.to_dict() == pytest.approx({42: -1.0, 6: -1.0}), "per 0.1 of novelty"
    assert (slopes.slope_seeds == 3).all()
    shown = section.tables[0][1]
    assert shown.frames.tolist() == [42, 6], "the best configuration first"
    assert shown["0 to 0.2"][0].startswith("28.75 [28.") and shown["0 to 0.2"][1] == "", "no views there: an empty cell"
    assert "worse on the more novel views in 6 of them" in " ".join(section.notes)
    # the views, hardest first: view 8, the most novel of every trial, is the worst of all 6
    hardest = pd.read_csv(tmp_path / "psnr_by_test_view.csv")
    assert hardest.view.tolist()[:2] == [8, 7] and hardest.worst_in.tolist()[0] == 6 and (hardest.trials == 6).all()
    assert (hardest.outside_in == [6] + [0] * 8).all()
    notes = " ".join(section.notes)
    assert "worst view of most trials: 8 in 6 of 6 trials (novelty 0.45 to 0.90, outside the training" in notes


def test_views_that_span_too_little_novelty_give_no_slope_and_no_views_no_section(tmp_path):
    assert math.isnan(view_novelty.trial_slope(np.array([0.30, 0.32, 0.35]), np.array([20.0, 19.0, 18.0])))
    assert math.isnan(view_novelty.trial_slope(np.array([0.1, 0.9]), np.array([20.0, 19.0])))
    assert view_novelty.trial_slope(np.array([0.1, 0.5, 0.9]), np.array([20.0, 18.0, 16.0])) == pytest.approx(-0.5)
    trials, views = study_views()
    sweep = SweepData(tmp_path, parse_spec(SPEC), {}, trials, pd.DataFrame(), pd.DataFrame())  # an older sweep
    assert view_novelty.view_novelty_section(sweep, trials, tmp_path) is None
