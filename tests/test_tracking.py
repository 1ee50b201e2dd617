"""MLflow records of real sweeps: the local SQLite store, a real `mlflow server`, an unreachable server, the UI."""

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from nerftune.state import STATE_FILE
from nerftune.tracking import (
    PENDING_FILE,
    TRIAL_TAG,
    TrackingTarget,
    TrialRun,
    _params,
    local_target,
    log_trial_folder,
)
from nerftune.tracking_sweep import finish_sweep, start_sweep
from nerftune.trials import TrialRecipe, write_recipe

from conftest import LR, grid_spec_text, run_cli
from servers import free_port, start_mlflow, stop_mlflow

pytestmark = pytest.mark.slow


def spec_text(scene_dir, name, steps, concurrent, frames="[3, 12]"):
    """A small sweep without a scheduler, evaluated every 20 steps."""
    sections = f"""\
max_concurrent_trials: {concurrent}
resources: {{cpu: 1, gpu: 0}}
eval: {{max_images: 1, train_log_every: 10, every: 20}}
tracking: {{preview_images: 1}}
"""
    return grid_spec_text(scene_dir, name, steps, sections, frames)


@pytest.fixture(scope="module")
def tracked(shared_sweep):
    """The shared sweep (4 trials, ASHA, renders of each completed trial), recorded in the default local store."""
    return shared_sweep.storage, MlflowClient(shared_sweep.tracking_uri), shared_sweep.table, shared_sweep.result


def children_and_parent(client, experiment):
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return children, parents


def artifact_paths(client, run_id, path=None):
    found = []
    for item in client.list_artifacts(run_id, path):
        found += artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return found


def test_parent_run_records_the_sweep(tracked):
    storage, client, table, _ = tracked
    children, parents = children_and_parent(client, "shared")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    params = parent.data.params
    assert len(params["spec_hash"]) == 16
    (scene,) = json.loads((storage / "shared" / STATE_FILE).read_text())["scenes"].values()
    assert (params["test_hash"], params["data_hash"]) == (scene["test_hash"], scene["data_hash"])
    assert len(scene["frames"]) == 24 and params["test_hash"] != params["data_hash"]
    assert params["version.nerfstudio"] == "1.1.5" and params["version.ray"] and params["version.torch"]
    assert params["version.optuna"] and params["version.nerftune"] and params["host"] and params["gpu"]
    assert set(artifact_paths(client, parent.info.run_id)) >= {"spec/shared.yaml", "results.csv"}
    assert parent.data.metrics["best_psnr"] == pytest.approx(table.best_psnr.max())
    assert (storage / "mlartifacts").is_dir(), "artifacts live beside the store"


def test_trial_runs_are_nested_with_params_metrics_and_artifacts(tracked):
    _, client, table, _ = tracked
    children, parents = children_and_parent(client, "shared")
    assert len(children) == len(table) == 4
    by_trial = {run.data.tags[TRIAL_TAG]: run for run in children}
    assert set(by_trial) == set(table.trial_id)
    for row in table.to_dict("records"):
        run = by_trial[row["trial_id"]]
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.info.run_name.startswith("train_trial_") and row["trial_id"] in run.info.run_name
        params = run.data.params
        assert int(params["frames"]) == row["frames"] and float(params[LR]) == row[LR]
        assert params["method"] == "nerfacto" and params["steps"] == "90" and params["seed"] == "0"
        assert params["model.hidden_dim"] == "32" and params["frames_used"] == str(row["frames"])
        tags = run.data.tags  # where the trial ran: tags, since a retried trial may run elsewhere
        assert tags["device"] == "cpu" and tags["implementation"] == "torch" and tags["host"] == row["host"]
        assert tags["node_id"] == row["node_id"] and "device" not in params
        assert params["pipeline.model.num_proposal_samples_per_ray"] == "[32, 16]", "a list value, as JSON"
        assert params["model.num_proposal_samples_per_ray"] == "(32, 16)", "nerfstudio's resolved tuple"
        history = client.get_metric_history(run.info.run_id, "psnr")
        steps = [m.step for m in history]
        assert steps == sorted(set(steps)) and steps[-1] == row["steps_done"]
        assert history[-1].value == pytest.approx(row["final_psnr"])
        loss_steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
        assert loss_steps == list(range(10, row["steps_done"] + 1, 10))
        assert len(client.get_metric_history(run.info.run_id, "train_psnr")) == len(loss_steps)
        for key in ("steps_per_s", "rays_per_s", "train_s", "eval_s", "setup_s", "wall_s", "steps_done"):
            assert key in run.data.metrics
        assert run.data.tags["stop_reason"] == row["stop_reason"]
        if row["stop_reason"] == "completed":  # rendered as it completed: the render's metrics at its last step
            assert run.data.metrics["render_fps"] > 0 and run.data.metrics["novel_doc_cer_views"] == 0
            assert "novel_doc_cer" not in run.data.metrics, "80x60 views: no view shows the card large enough to read"
        expected_status = {"completed": "FINISHED", "asha_pruned": "KILLED"}[row["stop_reason"]]
        assert run.info.status == expected_status
        files = artifact_paths(client, run.info.run_id)
        assert {"config.yml", "frames/train.txt", "frames/test.txt", "checkpoint/trial.ckpt"} <= set(files)
        assert [f for f in files if f.startswith("renders/step_")] == [f"renders/step_{s:06d}_test0.png" for s in steps]
        # each test view's scores and novelty, from the trial's last scoring of the whole test set (a completed one's)
        assert ("test_view_scores.csv" in files) == (row["stop_reason"] == "completed")
        train_list = client.download_artifacts(run.info.run_id, "frames/train.txt")
        assert len(Path(train_list).read_text().split()) == row["frames"]
    assert set(table.stop_reason) == {"completed", "asha_pruned"}, "trials one at a time: ASHA stops the frozen ones"


def test_param_values_longer_than_mlflow_allows_are_cut_not_refused(tmp_path):
    (params,) = _params({"long": "x" * (MAX_PARAM_VAL_LENGTH + 50)})
    assert len(params.value) == MAX_PARAM_VAL_LENGTH and params.value.endswith("...")
    target, failures = start_sweep(
        local_target(tmp_path, "limits"), Path(__file__), {"a": 1}, {}, (["a"], "psnr", "max")
    )
    assert not failures
    run = TrialRun(target, "t1", "trial one")
    run.log_params({"long": "y" * 10000, "pipeline.model.proposal_net_args_list": [{"hidden_dim": 16}] * 400})
    assert run.failures == 0
    logged = MlflowClient(target.uri).get_run(run.run_id).data.params
    assert len(logged["long"]) == MAX_PARAM_VAL_LENGTH


def test_renders_made_after_the_sweep_join_their_trial_runs_with_their_metrics(tmp_path):
    target, failures = start_sweep(
        local_target(tmp_path, "after"), Path(__file__), {"a": 1}, {}, (["a"], "psnr", "max")
    )
    assert not failures
    run = TrialRun(target, "t1", "trial one")
    out = tmp_path / "renders" / "circles"
    out.mkdir(parents=True)
    (out / "views.csv").write_text("view,doc_cer\n0,0.25\n1,\n")
    read = {"render_fps": 0.5, "novel_doc_cer": 0.25, "novel_doc_cer_views": 1}
    assert log_trial_folder(target, "t1", out, "renders/circles", read, step=90)
    client = MlflowClient(target.uri)
    logged = client.get_run(run.run_id).data.metrics
    assert {key: logged[key] for key in read} == read
    assert [m.step for m in client.get_metric_history(run.run_id, "novel_doc_cer")] == [90]
    assert artifact_paths(client, run.run_id) == ["renders/circles/views.csv"]
    unread = {"render_fps": 0.5, "novel_doc_cer": None, "novel_doc_cer_views": 0}
    TrialRun(target, "t2", "trial two")
    assert log_trial_folder(target, "t2", out, "renders/circles", unread, step=90)
    (other,) = [r for r in client.search_runs([target.experiment_id]) if r.data.tags.get(TRIAL_TAG) == "t2"]
    assert "novel_doc_cer" not in other.data.metrics and other.data.metrics["novel_doc_cer_views"] == 0
    assert not log_trial_folder(target, "unknown", out, "renders/circles", read), "no such trial run: nothing logged"


def test_metrics_a_trial_could_not_send_are_sent_when_the_sweep_ends(tmp_path):
    """A trial that ends while its tracking server is down keeps its unsent metrics in its folder; the sweep's end
    sends them once the server is back."""
    port = free_port()
    server = start_mlflow("server", tmp_path / "mlflow.db", tmp_path, port)
    try:
        uri = f"http://127.0.0.1:{port}"
        target, failures = start_sweep(
            TrackingTarget(uri, "outage"), Path(__file__), {"a": 1}, {}, (["a"], "psnr", "max")
        )
        assert not failures
        trial_dir = tmp_path / "sweep" / "train_trial_t1"
        trial_dir.mkdir(parents=True)
        write_recipe(trial_dir, TrialRecipe("t1", {"frames": 3}, "tiny", "data", 8, str(trial_dir)))
        run = TrialRun(target, "t1", "trial one", trial_dir / PENDING_FILE)
        run.queue_metrics({"psnr": 20.0}, 100)
        run.flush()
        assert not (trial_dir / PENDING_FILE).exists(), "nothing waits while the server answers"
        stop_mlflow(server)
        run.queue_metrics({"psnr": 21.0}, 200)
        run.queue_metrics({"psnr": 22.0}, 300)
        run.flush()
        assert run.failures > 0 and (trial_dir / PENDING_FILE).is_file(), "the trial ends with two unsent"
        server = start_mlflow("server", tmp_path / "mlflow.db", tmp_path, port)
        summary = [{"trial_id": "t1", "stop_reason": "completed", "steps_done": 300, "final": {}}]
        results = trial_dir.parent / "results.csv"
        results.write_text("trial_id\nt1\n")
        assert not finish_sweep(target, summary, {}, results)
        history = MlflowClient(uri).get_metric_history(run.run_id, "psnr")
        assert [(m.step, m.value) for m in history] == [(100, 20.0), (200, 21.0), (300, 22.0)]
        assert not (trial_dir / PENDING_FILE).exists()
    finally:
        stop_mlflow(server)


def test_unreachable_tracking_server_does_not_fail_trials(scene_dir, write_spec, tmp_path):
    port = free_port()  # nobody listens there
    spec = write_spec(spec_text(scene_dir, "offline", steps=20, concurrent=1, frames="[3]"))
    storage = tmp_path / "sweeps"
    result = run_cli(str(spec), "--storage", str(storage), "--tracking-uri", f"http://127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(storage / "offline" / "results.csv")
    assert (table.stop_reason == "completed").all() and (table.steps_done == 20).all()
    assert (table.tracking_failures > 0).all()
    assert f"MLflow at http://127.0.0.1:{port}" in result.stderr and "results.csv has every result" in result.stderr


def test_sweep_logs_to_a_real_tracking_server(scene_dir, write_spec, tmp_path):
    port = free_port()
    server = start_mlflow("server", tmp_path / "server.db", tmp_path, port)
    try:
        spec = write_spec(spec_text(scene_dir, "served", steps=40, concurrent=2))
        uri = f"http://127.0.0.1:{port}"
        result = run_cli(str(spec), "--storage", str(tmp_path / "sweeps"), "--tracking-uri", uri)
        assert result.returncode == 0, result.stderr[-3000:]
        assert not (tmp_path / "sweeps" / "mlflow.db").exists(), "nothing recorded locally"
        client = MlflowClient(uri)
        children, parents = children_and_parent(client, "served")
        assert len(parents) == 1 and len(children) == 2
        for run in children:
            assert run.info.status == "FINISHED" and run.data.tags["stop_reason"] == "completed"
            assert [m.step for m in client.get_metric_history(run.info.run_id, "psnr")] == [20, 40]
            assert "checkpoint/trial.ckpt" in artifact_paths(client, run.info.run_id)
        assert (tmp_path / "server-artifacts").is_dir(), "artifacts went through the server"
    finally:
        stop_mlflow(server)


def test_mlflow_ui_shows_the_trials_and_their_params(tracked, tmp_path):
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.fail("Chromium is missing: apt-get install chromium (make test installs it)")
    from playwright.sync_api import sync_playwright

    storage, client, _, result = tracked
    children, _ = children_and_parent(client, "shared")
    experiment_id = children[0].info.experiment_id
    [printed] = [
        line.split("in the UI: ")[1].split()[0] for line in result.stdout.splitlines() if "in the UI: " in line
    ]
    view = "viewStateShareKey=nerftune&workflowType=machine_learning"
    assert printed == f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?{view}"
    port = free_port()
    ui = start_mlflow("ui", storage / "mlflow.db", tmp_path, port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(chromium),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
            )
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # the link the sweep printed (MLflow 3's UI opens in its GenAI mode unless the link says otherwise)
            page.goto(printed.replace(":5000/", f":{port}/"), wait_until="load")
            page.get_by_text("shared", exact=True).first.wait_for(timeout=60000)
            assert "workflowType=machine_learning" in page.url
            # the view the sweep shared: its run expanded to the trials, searched values and results as columns
            for run in children:
                page.get_by_text(run.info.run_name).first.wait_for(timeout=60000)
            for column in ("frames", LR, "best_psnr", "final_psnr", "stop_reason"):
                page.get_by_role("columnheader", name=column).first.wait_for(timeout=60000)
            page.screenshot(path=str(tmp_path / "experiment.png"), full_page=True)
            run = children[0]
            page.goto(
                f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs/{run.info.run_id}", wait_until="load"
            )
            page.get_by_text("frames_used").first.wait_for(timeout=60000)
            text = page.inner_text("body")
            page.screenshot(path=str(tmp_path / "run.png"), full_page=True)
            browser.close()
    finally:
        stop_mlflow(ui)
    assert (tmp_path / "experiment.png").stat().st_size > 10000
    for name in ("frames", "seed"):
        assert name in text.split(), f"param {name} not shown on the run page"
    assert run.data.params["frames"] in text
