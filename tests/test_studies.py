"""A real study on a local Ray cluster: replicates of a configuration run and stop together, every stratum keeps a
configuration to the last step, Optuna holds one trial per configuration, and a resume keeps the rung decisions; a
study over two scenes keeps each scene apart and pools them."""

import glob
import json
import pickle
from pathlib import Path

import optuna
import pandas as pd
import pytest
from ray import tune

from conftest import LR, run_cli
from nerftune.data.dataset import load_dataset
from nerftune.schedule import RUNG_BOOK_FILE
from nerftune.trials import RECIPE_FILE, read_recipe

pytestmark = pytest.mark.slow


def test_replicates_of_a_configuration_stop_at_the_same_rung(study_sweep):
    table = study_sweep.table
    assert len(table) == 8 and table.trial_id.is_unique
    assert (table.groupby("configuration").seed.apply(sorted) == [[0, 1]] * 4).all(), "each configuration, 2 seeds"
    for configuration, replicates in table.groupby("configuration"):
        assert replicates.steps_done.nunique() == 1, replicates.to_string()
        assert replicates.stop_reason.nunique() == 1
        assert replicates[["frames", LR]].drop_duplicates().shape[0] == 1, "replicates differ only in their seed"
    frozen = table[table[LR] < 1e-3]
    assert (frozen.stop_reason == "asha_pruned").all() and (frozen.steps_done == 20).all(), table.to_string()
    # the replicate that waited at the rung was stopped there too, in the state a resume reads: none trains again
    saved = tune.ExperimentAnalysis(str(study_sweep.storage.resolve() / "study")).trials
    assert {trial.status for trial in saved} == {"TERMINATED"}, [(t.trial_id, t.status) for t in saved]


def test_every_stratum_keeps_a_configuration_to_the_last_step(study_sweep):
    table = study_sweep.table
    for frames, stratum in table.groupby("frames"):
        assert (stratum.steps_done == 60).any(), f"frames={frames}: {stratum.to_string()}"
    assert set(table[table.stop_reason == "completed"].frames) == {3, 12}


def test_the_last_milestone_scores_the_whole_test_set(study_sweep):
    table = study_sweep.table
    completed = table[table.stop_reason == "completed"]
    assert completed.best_psnr.notna().all() and (completed.best_psnr == completed.final_psnr).all()
    assert table[table.stop_reason == "asha_pruned"].best_psnr.isna().all(), "1 of 3 test images is no best"


def test_optuna_holds_one_trial_per_configuration(study_sweep):
    state = sorted(glob.glob(str(study_sweep.folder / "searcher-state-*.pkl")))[-1]  # the rerun's (by start time)
    with open(state, "rb") as file:
        study = pickle.load(file)["study"]
    told = [t for t in study.trials if t.state != optuna.trial.TrialState.FAIL]
    assert len(told) == 4
    states = sorted(t.state.name for t in told)
    assert states == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED"], states
    table = study_sweep.table
    for trial in told:
        replicates = table[table.configuration == trial.number]
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert trial.value == pytest.approx(replicates.final_psnr.mean()), "the replicate mean"


def test_a_resume_keeps_the_rung_decisions_made_before_the_kill(study_sweep):
    import json

    book = json.loads((study_sweep.folder / RUNG_BOOK_FILE).read_text())
    for configuration, decided in study_sweep.book_at_kill["decisions"].items():
        for rung, decision in decided.items():
            assert book["decisions"][configuration][rung] == decision
    assert sorted(book["decisions"]) == ["0", "1", "2", "3"], "and the decisions made after the resume are kept too"
    frozen = study_sweep.table[study_sweep.table[LR] < 1e-3].configuration.astype(str).unique()
    assert all(book["decisions"][c] == {"20": "stop"} for c in frozen), book["decisions"]
    assert "resuming sweep study" in study_sweep.result.stdout
    assert study_sweep.table.configuration.value_counts().eq(2).all(), "no configuration run twice"


def test_after_the_resume_no_mlflow_run_is_left_open(study_sweep):
    """Every trial's run is closed, those of trials set aside too (started before the kill, after Ray's last saved
    state: their configurations ran again as new trials)."""
    from mlflow import MlflowClient

    from nerftune.tracking_sweep import SET_ASIDE
    from nerftune.trials import INTERRUPTED_FOLDER

    client = MlflowClient(study_sweep.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("study").experiment_id])
    assert len(runs) >= 1 + len(study_sweep.table), "the sweep's run and one per trial"
    assert [run.info.run_name for run in runs if run.info.status == "RUNNING"] == []
    set_aside = [run for run in runs if run.data.tags.get("stop_reason") == SET_ASIDE]
    assert all(run.info.status == "KILLED" for run in set_aside)
    assert len(set_aside) <= len(list((study_sweep.folder / INTERRUPTED_FOLDER).glob(f"*/{RECIPE_FILE}")))


def test_the_console_says_when_a_trial_continues_and_each_milestone_once(study_sweep):
    out = study_sweep.result.stdout
    assert "continues from step 20" in out, out[-3000:]
    for trial_id in study_sweep.table.trial_id:
        assert out.count(f"trial {trial_id} step 20:") <= 1, "a restored milestone reported again is not said again"


TWO_SCENES = """\
name: scenes
data:
  - {path: "synthetic:id-card", name: narrow, scene: {frames: 24, width: 80, height: 60, azimuth_range_deg: 100}}
  - {path: "synthetic:id-card", name: wide, scene: {frames: 24, width: 80, height: 60}}
profile: tiny
space: {steps: 60, seed: 0, frames: 6, frame_subset: {values: [0, 1]}}
replicates: frame_subset
search: {algorithm: grid}
scheduler: {type: none}
resources: {cpu: 1, gpu: 0}
eval: {max_images: 1}
tracking: {enabled: false}
render: {circles: {radii: [0.3], distances: [1.0], views: 2}, best_k: 1}
"""


def test_a_study_over_two_scenes_keeps_each_scene_apart_and_pools_them(write_spec, tmp_path):
    storage = tmp_path / "sweeps"
    result = run_cli(str(write_spec(TWO_SCENES)), "--storage", str(storage))
    assert result.returncode == 0, result.stderr[-3000:]
    folder = storage / "scenes"
    table = pd.read_csv(folder / "results.csv")
    assert sorted(table.scene) == ["narrow", "narrow", "wide", "wide"] and (table.stop_reason == "completed").all()
    state = json.loads((folder / "nerftune-sweep.json").read_text())
    data_dirs = {name: scene["data_dir"] for name, scene in state["scenes"].items()}
    assert set(data_dirs) == {"narrow", "wide"} and len(set(data_dirs.values())) == 2, "each scene its own data"
    assert all(len(scene["test_files"]) == 3 for scene in state["scenes"].values())
    rendered, trained = {}, {}
    for trial_dir in folder.glob(f"*/{RECIPE_FILE}"):
        recipe = read_recipe(trial_dir.parent)
        assert recipe.data_dir == data_dirs[recipe.config["scene"]], "a trial trains on its own scene"
        # the replicates are frame subsets: each trial trains on its own subset's frames of its scene
        subset = recipe.config["frame_subset"]
        dataset = load_dataset(recipe.data_dir, recipe.test_every)
        view = json.loads((Path(recipe.view_dir) / "transforms.json").read_text())
        frames = [Path(name).name for name in view["train_filenames"]]
        assert frames == [Path(dataset.frame_names[i]).name for i in dataset.train_indices(6, subset)]
        trained[recipe.config["scene"], subset] = frames
        for summary in trial_dir.parent.glob("renders/circles/render.json"):
            rendered[recipe.config["scene"]] = json.loads(summary.read_text())["views"]
    assert set(rendered) == {"narrow", "wide"}, "the best trial of each scene is rendered"
    assert trained["narrow", 0] != trained["narrow", 1] and trained["wide", 0] != trained["wide", 1]
    report = folder / "report"
    per_scene = pd.read_csv(report / "scenes.csv").set_index("scene")
    assert per_scene["mean"].to_dict() == pytest.approx(table.groupby("scene").psnr.mean().to_dict())
    (pooled,) = pd.read_csv(report / "scenes_pooled.csv").to_dict("records")
    assert pooled["n"] == 4 and pooled["scenes"] == 2 and pooled["mean"] == pytest.approx(table.psnr.mean())
    cost = pd.read_csv(report / "scenes_cost.csv").set_index("scene")
    assert cost.novel_views.to_dict() == rendered and (cost.device_s_per_novel_view > 0).all()
    assert cost.prepare_s.isna().all(), "synthetic scenes: nothing prepared"
    # each scene's views on a sheet of its own: the same path name, but other viewpoints
    assert (report / "novel_views_circles_narrow.png").is_file() and (report / "novel_views_circles_wide.png").is_file()
