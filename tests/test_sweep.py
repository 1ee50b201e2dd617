"""Real sweeps on a local Ray cluster, run through the command line as a user would: ASHA, results, the console,
resume after SIGKILL."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from ray import tune

from conftest import LR, ROOT, ctrl_c, interrupted_run, nerftune_command, run_cli
from nerftune.spec import spec_hash
from nerftune.trials import MILESTONE_FILE, milestones
from nerftune.tuner import FRESH_WORKERS

pytestmark = pytest.mark.slow


def test_sweep_with_asha_writes_results_and_prunes(shared_sweep):
    table = shared_sweep.table
    assert len(table) == 4 and table["trial_id"].is_unique
    assert len(table[["frames", LR]].drop_duplicates()) == 4, "the grid, each once"
    pruned = table[table.stop_reason == "asha_pruned"]
    completed = table[table.stop_reason == "completed"]
    frozen = table[table[LR] < 1e-3]
    assert len(completed) >= 1 and set(completed[LR]) == {1e-2}, table.to_string()
    assert (frozen.stop_reason == "asha_pruned").all() and (frozen.steps_done == 30).all(), "stopped at the 1st rung"
    assert pruned.steps_done.isin([30, 60]).all() and (completed.steps_done == 90).all()
    assert table.final_psnr.between(5, 60).all() and (completed.best_psnr >= completed.final_psnr - 1e-9).all()
    assert pruned.best_psnr.isna().all(), "scored on 1 of the 3 test images only: no best on the whole test set"
    assert (table.steps_per_s > 0).all() and (table.train_s > 0).all() and (table.eval_s > 0).all()
    assert (table.frames_used == table.frames).all()
    # where each trial ran: on this CPU machine, the eager pure-torch hash grid (the fast path is for CUDA)
    assert (table.device == "cpu").all() and (table.implementation == "torch").all() and (table.compile_s == 0).all()
    assert (table.host == socket.gethostname()).all()
    assert table[["gpu_name", "gpu_memory_mb", "peak_gpu_mb", "cuda_visible_devices"]].isna().all().all()
    assert table[table[LR] > 1e-3].final_psnr.min() > frozen.final_psnr.max(), "learning beats a frozen model"
    assert (table["pipeline.model.num_proposal_samples_per_ray"] == "[32, 16]").all(), "a list value, as JSON"


def test_the_console_shows_trial_events_and_the_log_keeps_the_rest(shared_sweep):
    out, err = shared_sweep.result.stdout, shared_sweep.result.stderr
    table = shared_sweep.table
    for trial_id, reason, steps in zip(table.trial_id, table.stop_reason, table.steps_done):
        assert f"trial {trial_id} started: frames=" in out
        assert f"trial {trial_id} step 30: psnr " in out
        ended = "finished at step 90" if reason == "completed" else f"stopped by the scheduler at step {steps}"
        assert f"trial {trial_id} {ended}: psnr " in out
    assert "best trial" in out and "results:" in out
    assert err.count("LPIPS is empty") <= 1, "said once (only where the weights are missing)"
    chatter = ("Trial status", "Current time:", "Dataparser", "dataparser_transform", "Token authentication")
    assert not any(text in out + err for text in chatter), "Ray's tables and nerfstudio's output stay out"
    assert len((out + err).splitlines()) < 60
    log = (shared_sweep.folder / "sweep.log").read_text()
    assert "Ray" in log and len(log.splitlines()) > 20, "the chatter went to sweep.log"


def test_a_worker_takes_several_trials_and_each_keeps_its_files_in_its_own_folder(shared_sweep):
    folders = sorted(shared_sweep.folder.glob("train_trial_*"))
    last_report = {folder: milestones(folder)[-1] for folder in folders}
    assert len(folders) == 4
    assert len({report["pid"] for report in last_report.values()}) < 4, "a finished trial's worker took the next"
    for folder, report in last_report.items():
        assert json.loads((folder / "trial.json").read_text())["trial_id"] == report["trial_id"]
        assert (folder / "dataset" / "transforms.json").is_file()
        if report["step"] == 90:  # completed: rendered its novel views into its own folder
            assert list((folder / "renders").rglob("*.png")), folder.name
    assert not list(shared_sweep.folder.glob("*/scoring.json")), "how far its scoring was: gone once scored"
    # Tune's default TensorBoard logger is off (it would import torch into the driver); result.json stays
    assert not list(shared_sweep.folder.rglob("events.out.tfevents*"))


def test_a_new_worker_for_every_trial_gives_the_same_results(shared_sweep, tmp_path):
    storage = tmp_path / "sweeps"
    fresh = run_cli(str(shared_sweep.spec), "--storage", str(storage), env={FRESH_WORKERS: "1"})
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    pids = [milestones(folder)[-1]["pid"] for folder in (storage / "shared").glob("train_trial_*")]
    assert len(pids) == len(set(pids)) == 4
    both = pd.read_csv(storage / "shared" / "results.csv").merge(shared_sweep.table, on=["frames", LR])
    # ASHA may stop a learning trial at 60 or let it finish, by timing; the frozen ones (which the shared sweep ran
    # in reused workers) always stop at 30: every trial that trained as far scored the same
    same_steps = both[both.steps_done_x == both.steps_done_y]
    assert len(same_steps) >= 2 and (same_steps.final_psnr_x == same_steps.final_psnr_y).all(), both.to_string()


def test_a_finished_sweep_prints_its_results_again(shared_sweep):
    rerun = run_cli(str(shared_sweep.spec), "--storage", str(shared_sweep.storage))
    assert rerun.returncode == 0 and "best trial" in rerun.stdout, rerun.stderr[-2000:]
    assert "resuming sweep shared" in rerun.stdout and "started:" not in rerun.stdout, "no trial runs again"
    again = pd.read_csv(shared_sweep.folder / "results.csv")
    assert again.trial_id.tolist() == shared_sweep.table.trial_id.tolist()


def resume_spec(scene_dir, steps: int) -> str:
    return f"""\
name: resume
data: {scene_dir}
profile: tiny
space:
  frames: {{values: [3, 12]}}
  seed: {{values: [0, 1]}}
  steps: {steps}
search: {{algorithm: grid, seed: 1}}
scheduler: {{type: none}}
max_concurrent_trials: 2
resources: {{cpu: 1, gpu: 0}}
eval: {{max_images: 1, every: 30, train_log_every: 10}}
checkpoints: {{keep: 2}}
"""


def batch_stop(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGUSR1)  # as a batch system signals the job's command before its time is up


def assert_stopped_for_a_resume(storage: Path, seen: str, client: MlflowClient, experiment: str) -> None:
    """Tune saved the run's state: its unfinished trials are listed as such, nothing was rendered, and MLflow says
    the sweep's run and the unfinished trials' runs were killed."""
    table = pd.read_csv(storage / "resume" / "results.csv")
    unfinished = table[table.stop_reason == "unfinished"]
    assert len(unfinished) >= 1 and set(table.stop_reason) <= {"unfinished", "completed"}, "none said pruned"
    ended = len(table) - len(unfinished)
    assert f"interrupted: {ended} of 4 trials ended, {len(unfinished)} unfinished, {4 - len(table)} not started" in seen
    assert "the same command resumes it" in seen and "rendering" not in seen and "\nbest trial " not in seen
    assert "finished" not in json.loads((storage / "resume" / "nerftune-sweep.json").read_text())
    status = {run.data.tags.get("nerftune.trial_id"): run.info.status for run in client.search_runs([experiment])}
    assert status.pop(None) == "KILLED", "the sweep's run"
    assert {status[trial] for trial in unfinished.trial_id} == {"KILLED"}


def test_stop_signals_stop_a_sweep_that_the_same_command_resumes(scene_dir, write_spec, tmp_path):
    """Ctrl-C stops the first run and SIGUSR1 (a batch system's warning before its time is up) the resumed one;
    each leaves a state the same command resumes, and the third run finishes the sweep."""
    storage = tmp_path / "sweeps"
    text = resume_spec(scene_dir, 90) + "render: {circles: {radii: [0.3], distances: [1.0], views: 2}, trials: best}\n"
    spec = write_spec(text)
    command = [sys.executable, "-m", "nerftune.sweep", str(spec), "--storage", str(storage)]
    # a milestone's checkpoint is registered a moment after its line: the resume continues from it
    first = interrupted_run(command, ctrl_c, " step 30: ", settle=3)
    client = MlflowClient(f"sqlite:///{storage / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("resume").experiment_id
    assert_stopped_for_a_resume(storage, first, client, experiment)

    # stopped as soon as a trial continues, so that it is unfinished again
    second = interrupted_run(command, batch_stop, "continues from step ", settle=0)
    assert_stopped_for_a_resume(storage, second, client, experiment)

    third = run_cli(str(spec), "--storage", str(storage))
    assert third.returncode == 0, third.stderr[-3000:]
    assert "rendered trial" in third.stdout, third.stdout
    table = pd.read_csv(storage / "resume" / "results.csv")
    assert len(table) == 4 and (table.stop_reason == "completed").all(), table.to_string()
    assert table.resumed_from_step.isin([30, 60]).sum() >= 1, table.to_string()
    # the best 3 (by default) rendered after the sweep, their renders' metrics in their rows
    assert table.render_fps.notna().tolist() == [True] * 3 + [False], table.to_string()
    assert (table.novel_doc_cer_views.dropna() == 0).all()
    assert {run.info.status for run in client.search_runs([experiment])} == {"FINISHED"}
    assert "finished" in json.loads((storage / "resume" / "nerftune-sweep.json").read_text())
    assert not list((storage / "resume").rglob("events.out.tfevents*")), "a resumed run names its loggers too"


def test_killed_sweep_resumes_from_checkpoints(scene_dir, write_spec, tmp_path):
    storage = tmp_path / "sweeps"
    spec = write_spec(resume_spec(scene_dir, 150))  # killed at step 60: a trial takes seconds more to finish
    command = [sys.executable, "-m", "nerftune.sweep", str(spec), "--storage", str(storage)]
    first = subprocess.Popen(
        command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and len(list((storage / "resume").glob("*/checkpoint_000001"))) < 2:
            time.sleep(1)
        assert len(list((storage / "resume").glob("*/checkpoint_000001"))) >= 2, "two trials checkpointed twice"
        time.sleep(2)  # let the experiment state catch up with the checkpoints
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the driver's whole session (Ray's workers outlive it by a moment)
        first.wait()
    assert not (storage / "resume" / "results.csv").exists(), "killed mid-sweep"
    # a kill between Ray's deleting a trial's older checkpoint and its saving the sweep's state leaves a state that
    # names a deleted checkpoint: here, one unfinished trial's
    state = tune.ExperimentAnalysis(str(storage / "resume"))
    named = next(t for t in state.trials if t.checkpoint and t.status != "TERMINATED")
    named_step = json.loads((Path(named.checkpoint.path) / MILESTONE_FILE).read_text())["step"]
    shutil.rmtree(named.checkpoint.path)

    changed = write_spec(resume_spec(scene_dir, 160), "changed.yaml")
    refused = run_cli(str(changed), "--storage", str(storage))
    assert refused.returncode == 2 and "changed since sweep resume started" in refused.stderr
    assert "steps: 160" in refused.stderr

    with spec.open("a") as file:
        file.write("# a comment changes the spec file: the resume needs --force, and the report says so\n")
    second = run_cli(str(spec), "--storage", str(storage), "--force")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming sweep resume" in second.stdout
    assert "warning: --force: resuming sweep resume although its spec" in second.stderr
    provenance = pd.read_csv(storage / "resume" / "report" / "provenance.csv").set_index("what").value
    [forced] = [value for what, value in provenance.items() if what.startswith("resumed with --force, ")]
    assert forced.startswith(f"its spec {spec.name} changed (+# a comment"), forced
    page = (storage / "resume" / "report" / "index.html").read_text()
    assert "Warning: resumed with --force although its spec" in page
    state = json.loads((storage / "resume" / "nerftune-sweep.json").read_text())
    assert state["spec_hash"] == spec_hash(spec), "later resumes compare with the spec it resumed on"
    assert f"trial {named.trial_id}: its checkpoint {Path(named.checkpoint.path).name} is gone" in second.stderr
    table = pd.read_csv(storage / "resume" / "results.csv")
    assert len(table) == 4 and table.trial_id.is_unique
    assert len(table[["frames", "seed"]].drop_duplicates()) == 4, "no configuration run twice"
    assert (table.stop_reason == "completed").all() and (table.steps_done == 150).all()
    resumed = table[table.resumed_from_step > 0]
    assert len(resumed) >= 1, table.to_string()
    assert resumed.resumed_from_step.isin([30, 60, 90, 120]).all()
    # from another checkpoint (which one is tested in test_checkpoint_repair: Ray's workers outlive the kill by a
    # moment here, and may still write one)
    assert table.set_index("trial_id").resumed_from_step[named.trial_id] != named_step
    assert (150 - table.resumed_from_step).sum() < 4 * 150

    # MLflow kept one run per trial, and a resumed trial's metric history continues without repeats
    client = MlflowClient(f"sqlite:///{storage / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("resume").experiment_id])
    trial_runs = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    assert len(runs) == 5 and len(trial_runs) == 4
    [sweep_run] = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert f"its spec {spec.name} changed" in sweep_run.data.tags["nerftune.forced_resumes"]
    assert sorted(run.data.tags["nerftune.trial_id"] for run in trial_runs) == sorted(table.trial_id)
    resumed_at = dict(zip(table.trial_id, table.resumed_from_step))
    for run in trial_runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "psnr")]
        assert sorted(set(steps)) == [30, 60, 90, 120, 150], steps
        # the history continues from the checkpoint the trial resumed at (steps trained after it, before the kill,
        # are trained and logged again)
        restarts = [step for previous, step in zip(steps, steps[1:]) if step <= previous]
        assert steps[0] == 30 and steps[-1] == 150, steps
        assert all(step == resumed_at[run.data.tags["nerftune.trial_id"]] + 30 for step in restarts), steps
        assert run.info.status == "FINISHED"

    # the recorded curves (every 30 steps) replay under ASHA: what it would have trained and kept
    replayed = nerftune_command(
        "replay", storage / "resume", "--grace-period", "30", "--reduction-factor", "2", "--stratify", "frames"
    )
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    trained = int(replayed.stdout.split("steps trained: ")[1].split()[0])
    # per stratum the first configuration trains all 150 steps, the other at least to the first rung (30)
    assert 2 * 150 + 2 * 30 <= trained <= 4 * 150 and "of 600" in replayed.stdout, replayed.stdout
    assert "best of frames=3" in replayed.stdout and "best of frames=12" in replayed.stdout
    refused = nerftune_command("replay", storage / "resume", "--grace-period", "30", "--stratify", "lr")
    assert refused.returncode == 2 and "'lr' is not a searched dimension" in refused.stderr
