"""A team's setting: MLflow on a real PostgreSQL server with artifacts served over HTTP, the database password only
in the environment, and an MLflow server that dies mid-sweep."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import grid_spec_text, ROOT
from servers import PASSWORD, free_port, pg_ctl, start_mlflow, stop_mlflow

pytestmark = pytest.mark.slow
TEXT_ARTIFACTS = (".json", ".yaml", ".yml", ".txt", ".csv", ".md", ".html", ".log")


def team_spec(scene_dir, name: str, steps: int) -> str:
    sections = """\
max_concurrent_trials: 2
resources: {cpu: 1, gpu: 0}
eval: {max_images: 1, train_log_every: 50, every: 100}
tracking: {preview_images: 1}
"""
    return grid_spec_text(scene_dir, name, steps, sections)


def sweep_command(spec, storage, uri) -> list[str]:
    return [sys.executable, "-m", "nerftune.sweep", str(spec), "--storage", str(storage), "--tracking-uri", uri]


def runs_of(client: MlflowClient, experiment: str):
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return children, [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def all_artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    found = []
    for item in client.list_artifacts(run_id, path):
        found += all_artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return found


def test_a_sweep_on_postgresql_loses_no_metric_when_its_server_restarts_and_resumes_without_duplicates(
    postgres, scene_dir, write_spec, tmp_path
):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_mlflow("server", postgres.uri, tmp_path, port, postgres.env)
    spec = write_spec(team_spec(scene_dir, "team", steps=600))
    storage = tmp_path / "sweeps"
    env = {**os.environ, **postgres.env, "PYTHONUNBUFFERED": "1"}  # as a researcher who exported PGPASSWORD
    sweep = subprocess.Popen(
        sweep_command(spec, storage, uri), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # once both trials have reported their first test metrics, the server dies for a while, then comes back
        client = MlflowClient(uri)
        deadline = time.time() + 300
        while time.time() < deadline and sweep.poll() is None:
            experiment = client.get_experiment_by_name("team")
            children = runs_of(client, "team")[0] if experiment else []
            if len(children) == 2 and all("psnr" in run.data.metrics for run in children):
                break
            time.sleep(1)
        assert sweep.poll() is None, "the trials finished before the server could be stopped"
        stop_mlflow(server)
        time.sleep(8)
        server = start_mlflow("server", postgres.uri, tmp_path, port, postgres.env)
        out, err = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, err[-3000:]

        table = pd.read_csv(storage / "team" / "results.csv")
        assert (table.stop_reason == "completed").all() and table.tracking_failures.sum() > 0, "the outage was felt"
        children, parents = runs_of(client, "team")
        assert len(parents) == 1 and len(children) == 2
        for run in children:
            run_id = run.info.run_id
            assert run.info.status == "FINISHED"
            assert [m.step for m in client.get_metric_history(run_id, "psnr")] == [100, 200, 300, 400, 500, 600]
            assert run.info.artifact_uri.startswith("mlflow-artifacts:"), "uploaded over HTTP, no shared folder"
            assert "checkpoint/trial.ckpt" in all_artifacts(client, run_id)
        assert list((tmp_path / "server-artifacts").rglob("trial.ckpt")), "stored where the server keeps them"

        # the same command again resumes the finished sweep: no second parent run, no duplicate trial runs
        again = subprocess.run(sweep_command(spec, storage, uri), cwd=ROOT, env=env, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr[-3000:]
        children, parents = runs_of(client, "team")
        assert len(parents) == 1 and len(children) == 2

        # the password went nowhere: not into params, tags, text artifacts or the sweep's own files
        for run in [*children, *parents]:
            assert PASSWORD not in repr(run.data.params) + repr(run.data.tags)
            for path in all_artifacts(client, run.info.run_id):
                if path.endswith(TEXT_ARTIFACTS):
                    local = client.download_artifacts(run.info.run_id, path, str(tmp_path / "downloaded"))
                    assert PASSWORD not in open(local, errors="replace").read(), path
        for path in (storage / "team").rglob("*"):
            if path.is_file() and path.suffix in TEXT_ARTIFACTS:
                assert PASSWORD not in path.read_text(errors="replace"), path
        assert PASSWORD not in out + err + again.stdout + again.stderr
    finally:
        if sweep.poll() is None:
            sweep.kill()
        stop_mlflow(server)


def test_a_tracking_database_that_is_down_stops_the_sweep_before_it_starts(postgres, scene_dir, write_spec, tmp_path):
    down = postgres.uri.replace(str(postgres.port), str(free_port()))  # nothing listens there
    spec = write_spec(team_spec(scene_dir, "down", steps=20))
    env = {**os.environ, **postgres.env}
    result = subprocess.run(
        sweep_command(spec, tmp_path / "sweeps", down), cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "--tracking-uri: the database at postgresql://nerftune@127.0.0.1" in line and "does not answer" in line
    assert not (tmp_path / "sweeps" / "down").exists(), "nothing started"

    # the database's own server down behind a running MLflow server: its store hangs, the sweep does not start
    port = free_port()
    server = start_mlflow("server", postgres.uri, tmp_path, port, postgres.env)
    try:
        pg_ctl(postgres, "stop")
        result = subprocess.run(
            sweep_command(spec, tmp_path / "sweeps", f"http://127.0.0.1:{port}"),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2 and "is up, but its store does not answer" in result.stderr, result.stderr[-2000:]
    finally:
        stop_mlflow(server)
        pg_ctl(postgres, "start")
