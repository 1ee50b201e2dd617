"""Real sweeps on a local Ray cluster, run through the command line as a user would."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from mlflow import MlflowClient
import pandas as pd
import pytest

from nerftune.spec import parse_spec
from nerftune.sweep import build_searcher

from conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def test_asha_stopped_trials_are_pruned_in_optuna_with_their_last_value():
    spec = parse_spec("name: t\ndata: synthetic:id-card\nspace: {frames: {values: [2, 4]}, steps: 400}\n")
    searcher = build_searcher(spec)
    searcher.suggest("stopped")
    searcher.on_trial_result("stopped", {"psnr": 14.0, "step": 100, "target_steps": 400, "training_iteration": 1})
    searcher.on_trial_complete("stopped", {"psnr": 14.0, "step": 100, "target_steps": 400})
    searcher.suggest("finished")
    for step, value in ((100, 15.0), (400, 21.0)):
        searcher.on_trial_result(
            "finished", {"psnr": value, "step": step, "target_steps": 400, "training_iteration": 1}
        )
    searcher.on_trial_complete("finished", {"psnr": 21.0, "step": 400, "target_steps": 400})
    stopped, finished = searcher._ot_study.trials
    assert stopped.state == optuna.trial.TrialState.PRUNED
    assert stopped.intermediate_values == {100: 14.0}
    assert finished.state == optuna.trial.TrialState.COMPLETE and finished.value == 21.0
    assert finished.intermediate_values == {100: 15.0, 400: 21.0}, "keyed by training step"


def sweep_spec(scene_dir, **fields):
    text = f"""\
name: {fields.get("name", "asha")}
data: {scene_dir}
profile: tiny
space:
  frames: {{values: [3, 12, 21]}}
  seed: {fields.get("seed", 0)}
  steps: {fields.get("steps", 150)}
  optimizers.fields.optimizer.lr: {fields.get("lr", "{values: [1.0e-2, 1.0e-7]}")}
search: {{algorithm: grid, seed: 1}}
scheduler: {fields.get("scheduler", "{type: asha, grace_period: 30, reduction_factor: 2}")}
max_concurrent_trials: 2
resources: {{cpu: 1, gpu: 0}}
eval: {{max_images: 1, every: {fields.get("every", 0)}, train_log_every: 10}}
checkpoints: {{keep: 2}}
"""
    return text


def read_results(storage: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(storage / name / "results.csv")


def test_sweep_with_asha_writes_results_and_prunes(scene_dir, write_spec, tmp_path):
    storage = tmp_path / "sweeps"
    result = run_cli(str(write_spec(sweep_spec(scene_dir))), "--storage", str(storage))
    assert result.returncode == 0, result.stderr[-3000:]
    table = read_results(storage, "asha")
    assert len(table) == 6 and table["trial_id"].is_unique
    assert len(table[["frames", "optimizers.fields.optimizer.lr"]].drop_duplicates()) == 6, "the grid, each once"
    pruned = table[table.stop_reason == "asha_pruned"]
    completed = table[table.stop_reason == "completed"]
    assert len(pruned) >= 1, table.to_string()
    assert (pruned.steps_done < 150).all() and pruned.steps_done.isin([30, 60, 120]).all()
    assert (completed.steps_done == 150).all() and len(completed) >= 1
    assert table.best_psnr.between(5, 60).all() and (table.best_psnr >= table.final_psnr - 1e-9).all()
    assert (table.steps_per_s > 0).all() and (table.train_s > 0).all() and (table.eval_s > 0).all()
    assert (table.frames_used == table.frames).all()
    good = table[table["optimizers.fields.optimizer.lr"] > 1e-3].best_psnr.max()
    frozen = table[table["optimizers.fields.optimizer.lr"] < 1e-3].best_psnr.max()
    assert good > frozen, "training with a working learning rate beats a frozen model"
    assert "best trial" in result.stdout

    rerun = run_cli(str(storage.parent / "spec.yaml"), "--storage", str(storage))
    assert rerun.returncode == 0 and "best trial" in rerun.stdout, "a finished sweep prints its results again"
    assert read_results(storage, "asha").trial_id.tolist() == table.trial_id.tolist()


def test_killed_sweep_resumes_from_checkpoints(scene_dir, write_spec, tmp_path):
    storage = tmp_path / "sweeps"
    spec = write_spec(
        sweep_spec(
            scene_dir,
            name="resume",
            steps=300,
            lr="1.0e-2",
            seed="{values: [0, 1]}",
            scheduler="{type: none}",
            every=50,
        )
    )
    command = [sys.executable, "-m", "nerftune.sweep", str(spec), "--storage", str(storage)]
    first = subprocess.Popen(
        command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and len(list((storage / "resume").glob("*/checkpoint_000001"))) < 2:
            time.sleep(1)
        assert len(list((storage / "resume").glob("*/checkpoint_000001"))) >= 2, "two trials checkpointed twice"
        time.sleep(3)  # let the experiment state catch up with the checkpoints
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the whole session: driver, raylet and workers, as a reboot would
        first.wait()
    assert not (storage / "resume" / "results.csv").exists(), "killed mid-sweep"

    original = spec.read_text()
    edited = original.replace("steps: 300", "steps: 310")
    changed = write_spec(edited)
    refused = run_cli(str(changed), "--storage", str(storage))
    assert refused.returncode == 2 and "changed since sweep resume started" in refused.stderr
    assert "steps: 310" in refused.stderr

    spec.write_text(original)  # the edit undone: the same spec resumes
    second = run_cli(str(spec), "--storage", str(storage))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming sweep resume" in second.stdout
    table = read_results(storage, "resume")
    assert len(table) == 6 and table.trial_id.is_unique
    assert len(table[["frames", "seed"]].drop_duplicates()) == 6, "no configuration run twice"
    assert (table.stop_reason == "completed").all() and (table.steps_done == 300).all()
    resumed = table[table.resumed_from_step > 0]
    assert len(resumed) >= 1, table.to_string()
    assert resumed.resumed_from_step.isin(range(50, 300, 50)).all()
    trained_after_restart = (300 - table.resumed_from_step).sum()
    assert trained_after_restart < 6 * 300

    # MLflow kept one run per trial, and a resumed trial's metric history continues without repeats
    client = MlflowClient(f"sqlite:///{storage / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("resume").experiment_id])
    trial_runs = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    assert len(runs) == 7 and len(trial_runs) == 6
    assert sorted(run.data.tags["nerftune.trial_id"] for run in trial_runs) == sorted(table.trial_id)
    resumed_at = dict(zip(table.trial_id, table.resumed_from_step))
    for run in trial_runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "psnr")]
        assert sorted(set(steps)) == list(range(50, 301, 50)), steps
        # the history continues from the checkpoint the trial resumed at (steps trained after it, before the kill,
        # are trained and logged again)
        restarts = [step for previous, step in zip(steps, steps[1:]) if step <= previous]
        assert steps[0] == 50 and steps[-1] == 300, steps
        assert all(step == resumed_at[run.data.tags["nerftune.trial_id"]] + 50 for step in restarts), steps
        assert run.info.status == "FINISHED"


def test_tpe_does_not_propose_a_configuration_twice():
    spec = parse_spec(
        "name: t\ndata: synthetic:id-card\nspace: {frames: {values: [2, 4, 8]}, seed: {values: [0, 1]}, steps: 10}\n"
    )
    searcher = build_searcher(spec)
    configs = []
    for index in range(6):
        configs.append(searcher.suggest(f"t{index}"))
        searcher.on_trial_complete(f"t{index}", {"psnr": 10.0 + index, "step": 10, "target_steps": 10})
    assert len({tuple(sorted(c.items())) for c in configs}) == 6, configs


def test_pruning_the_last_trial_of_a_grid_does_not_raise():
    spec = parse_spec(
        "name: t\ndata: synthetic:id-card\nspace: {frames: {values: [2, 4]}, steps: 400}\nsearch: {algorithm: grid}\n"
    )
    searcher = build_searcher(spec)
    for trial in ("a", "b"):
        searcher.suggest(trial)
        searcher.on_trial_result(trial, {"psnr": 14.0, "step": 100, "target_steps": 400})
        searcher.on_trial_complete(trial, {"psnr": 14.0, "step": 100, "target_steps": 400})
    assert [t.state for t in searcher._ot_study.trials] == [optuna.trial.TrialState.PRUNED] * 2
