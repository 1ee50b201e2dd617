"""A real multi-node Ray cluster on this machine: a head and worker nodes, each with its own raylet (`ray start`).
Trials ask for a custom resource only the workers have, a worker dies mid-trial, and bad clusters are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

import nerftune

from conftest import grid_spec_text, ROOT, refused_sweep
from servers import RAY_ENV, free_port, kill_raylet, start_mlflow, start_ray_node, stop_mlflow, stop_ray_node

WORKER = ["--num-cpus=2", "--num-gpus=0", '--resources={"trial_node": 2}']


def cluster_spec(scene_dir, name: str, custom: str = "{trial_node: 1}", steps: int = 300) -> str:
    sections = f"""\
max_failures: 1
resources: {{cpu: 1, gpu: 0, custom: {custom}}}
eval: {{max_images: 1, every: 100}}
tracking: {{preview_images: 0, images: none}}
"""
    return grid_spec_text(scene_dir, name, steps, sections)


def alive_nodes(address: str) -> dict[str, dict]:
    """The cluster's live nodes by id (asked from a separate process: this one stays no Ray driver)."""
    script = "import json, ray; ray.init(address=%r, logging_level='ERROR'); print(json.dumps(ray.nodes()))" % address
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, **RAY_ENV}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return {n["NodeID"]: n for n in json.loads(done.stdout.splitlines()[-1]) if n["Alive"]}


def wait_for_nodes(address: str, count: int, timeout: float = 120) -> dict[str, dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            nodes = alive_nodes(address)
            if len(nodes) == count:
                return nodes
        except AssertionError:
            pass
        time.sleep(2)
    raise AssertionError(f"the cluster at {address} did not reach {count} live nodes")


@pytest.fixture(scope="module")
def cluster():
    """A Ray head (1 CPU, no custom resource) and one worker node (`trial_node: 2`), stopped cleanly after."""
    temp = tempfile.mkdtemp(prefix="ntray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 characters
    port = free_port()
    head = start_ray_node(
        ["--head", f"--port={port}", "--num-cpus=1", "--num-gpus=0", f"--temp-dir={temp}", "--include-dashboard=false"]
    )
    address = f"127.0.0.1:{port}"
    wait_for_nodes(address, 1)
    started = [head, start_ray_node([f"--address={address}", *WORKER])]
    nodes = wait_for_nodes(address, 2)
    yield address, nodes, started  # a test that replaces the worker puts the new one in `started`
    for node in reversed(started):
        stop_ray_node(node)
    left = subprocess.run(["pgrep", "-f", temp], capture_output=True, text=True).stdout.split()
    assert not left, "every process of the test cluster stopped"


def run_sweep(spec: Path, storage: Path, address: str, *more: str, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "nerftune.sweep", str(spec), "--storage", str(storage), "--address", address]
    return subprocess.Popen(
        [*command, *more],
        cwd=ROOT,
        env={**os.environ, **RAY_ENV},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


@pytest.mark.slow
def test_trials_run_on_the_worker_and_one_that_loses_its_node_is_retried_on_another(
    cluster, postgres, scene_dir, write_spec, tmp_path
):
    address, nodes, started = cluster
    (head_id,) = [i for i, n in nodes.items() if "node:__internal_head__" in n["Resources"]]
    (first_worker,) = [i for i in nodes if i != head_id]
    port = free_port()
    server = start_mlflow("server", postgres.uri, tmp_path, port, postgres.env)  # artifacts uploaded over HTTP
    spec = write_spec(cluster_spec(scene_dir, "cluster"))
    storage = tmp_path / "sweeps"
    sweep = run_sweep(spec, storage, address, "--tracking-uri", f"http://127.0.0.1:{port}")
    replacement = None
    try:
        # once a trial has reported a milestone (and saved its checkpoint), the worker node dies; a new one joins
        deadline = time.time() + 300
        while time.time() < deadline and sweep.poll() is None:
            if any(path.read_text().strip() for path in storage.glob("cluster/*/result.json")):
                break
            time.sleep(1)
        assert sweep.poll() is None, "the sweep ended before its worker could be killed"
        kill_raylet(started[1])
        time.sleep(5)
        replacement = start_ray_node([f"--address={address}", *WORKER])
        out, err = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, out[-2000:] + err[-3000:]
        assert "retrying from its last checkpoint" in err

        table = pd.read_csv(storage / "cluster" / "results.csv")
        assert (table.stop_reason == "completed").all() and (table.steps_done == 300).all()
        assert head_id not in set(table.node_id), "no trial ran on the head: it lacks trial_node"
        second_worker = set(wait_for_nodes(address, 2)) - {head_id}
        assert set(table.node_id) <= {first_worker, *second_worker} and set(table.node_id) & second_worker
        assert (table.resumed_from_step.fillna(0) > 0).any(), "retried from a checkpoint, not from step 0"
        assert table.host.notna().all() and (table.device == "cpu").all()

        client = MlflowClient(f"http://127.0.0.1:{port}")
        for run_id, node_id in zip(table.mlflow_run_id, table.node_id):
            run = client.get_run(run_id)
            assert run.data.tags["node_id"] == node_id and "host" in run.data.tags, "where its last attempt ran"
            assert run.info.artifact_uri.startswith("mlflow-artifacts:")
            assert [m.step for m in client.get_metric_history(run_id, "psnr")][-1] == 300
            assert client.list_artifacts(run_id, "checkpoint"), "a worker's checkpoint arrived, no shared folder"
    finally:
        if sweep.poll() is None:
            sweep.kill()
        stop_mlflow(server)
        if replacement is not None:
            started[1] = replacement  # the fixture stops the live worker


@pytest.mark.slow
def test_a_resource_no_node_has_and_data_a_node_cannot_see_are_one_line_each(cluster, scene_dir, write_spec, tmp_path):
    address, _, _ = cluster
    spec = write_spec(cluster_spec(scene_dir, "gpu", custom="{a100: 1}"))
    line = refused_sweep(spec, tmp_path / "sweeps", "gpu", "--address", address, env=RAY_ENV)
    assert ": resources: no node of the cluster" in line and "1 a100" in line and "2 trial_node" in line, line

    # a node that cannot see the data (the folder hidden in its own mount namespace): refused before any trial
    if os.geteuid() != 0 or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("hiding a folder from one node needs root and mount namespaces (CI has both)")
    blind = start_ray_node([f"--address={address}", *WORKER], hidden=scene_dir)
    try:
        wait_for_nodes(address, 3)
        spec = write_spec(cluster_spec(scene_dir, "blind"))
        line = refused_sweep(spec, tmp_path / "sweeps", "blind", "--address", address, env=RAY_ENV)
        assert ": data: node " in line and f"cannot see {scene_dir / 'transforms.json'}" in line, line
    finally:
        stop_ray_node(blind)

    # a node without nerftune (its package folder hidden as the data was): refused before any trial, not a traceback
    bare = start_ray_node([f"--address={address}", *WORKER], hidden=Path(nerftune.__file__).parent)
    try:
        wait_for_nodes(address, 3)
        spec = write_spec(cluster_spec(scene_dir, "bare"))
        line = refused_sweep(spec, tmp_path / "sweeps", "bare", "--address", address, env=RAY_ENV)
        assert "--address: node " in line and "cannot run nerftune (ModuleNotFoundError: " in line, line
        assert "install this machine's nerftune on every node" in line, line
    finally:
        stop_ray_node(bare)


def test_an_address_no_cluster_answers_at_is_one_line(scene_dir, write_spec, tmp_path):
    spec = write_spec(cluster_spec(scene_dir, "nowhere"))
    start = time.time()
    line = refused_sweep(spec, tmp_path / "sweeps", "nowhere", "--address", f"127.0.0.1:{free_port()}")
    assert "--address: no Ray cluster answers at 127.0.0.1:" in line and time.time() - start < 60, line


def test_ray_address_in_the_environment_is_the_cluster_to_join_as_for_rays_own_tools(scene_dir, write_spec, tmp_path):
    """`ray job submit` runs its command with RAY_ADDRESS set: the sweep joins that cluster, checked as --address."""
    spec = write_spec(cluster_spec(scene_dir, "nowhere"))
    address = f"127.0.0.1:{free_port()}"
    line = refused_sweep(spec, tmp_path / "sweeps", "nowhere", env={"RAY_ADDRESS": address})
    assert f"--address: no Ray cluster answers at {address}" in line, line
