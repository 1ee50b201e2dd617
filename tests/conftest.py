"""Shared fixtures: a small synthetic scene, spec files written into a test's folder, and one real sweep that the
sweep, tracking, novel-view and console tests all read (a session-scoped fixture: it runs once per test session)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from nerftune.data.synthetic import SceneOptions, write_scene
from nerftune.schedule import RUNG_BOOK_FILE

ROOT = Path(__file__).resolve().parents[1]
SMALL_SCENE = SceneOptions(frames=24, width=80, height=60)
LR = "optimizers.fields.optimizer.lr"


@pytest.fixture(scope="session")
def scene_dir(tmp_path_factory) -> Path:
    """A 24-frame 80x60 synthetic dataset, rendered once per test session (treat it as read-only)."""
    return write_scene(tmp_path_factory.mktemp("scene") / SMALL_SCENE.name(), SMALL_SCENE)


@pytest.fixture
def write_spec(tmp_path):
    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m nerftune.sweep ...` as a user would, in a fresh process (`env`: more variables)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "nerftune.sweep", *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def refused_sweep(spec: Path, storage: Path, name: str, *more: str, env: dict[str, str] | None = None) -> str:
    """Run a sweep that must be refused before it starts: exit status 2, one `error:` line (returned), and no sweep
    folder made."""
    result = run_cli(str(spec), "--storage", str(storage), *more, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert not (storage / name).exists()
    return line


def ctrl_c(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGINT)  # as a terminal signals its foreground group: Ray's processes too


def interrupted_run(command: list[str], stop, after: str, settle: float) -> str:
    """Start the sweep, and stop it with `stop` `settle` seconds after a line that holds `after`; what it printed."""
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        seen = ""
        for line in process.stdout:
            seen += line
            if after in line:
                break
        time.sleep(settle)
        stop(process)
        seen += process.stdout.read()
        assert process.wait(timeout=120) == 130, seen
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return seen


def nerftune_command(*args: str) -> subprocess.CompletedProcess:
    """Run `python -m nerftune.cli COMMAND ...` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "nerftune.cli", *map(str, args)], cwd=ROOT, capture_output=True, text=True
    )


@dataclass(frozen=True)
class Swept:
    """A finished real sweep: its spec, storage folder, results table and what the command printed."""

    spec: Path
    storage: Path
    name: str
    table: pd.DataFrame
    result: subprocess.CompletedProcess

    @property
    def folder(self) -> Path:
        return self.storage / self.name

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.storage / 'mlflow.db'}"

    def trial_dirs(self) -> list[Path]:
        return sorted(p.parent for p in self.folder.glob("*/trial.json"))


def grid_spec_text(scene_dir: Path, name: str, steps: int, sections: str, frames: str = "[3, 12]") -> str:
    """Tiny trials over `frames` (a learning rate that learns) by grid search with no scheduler; `sections` is the
    rest of the spec (concurrency, resources, eval, tracking) as YAML lines."""
    return f"""\
name: {name}
data: {scene_dir}
profile: tiny
space:
  frames: {{values: {frames}}}
  steps: {steps}
  {LR}: 1.0e-2
search: {{algorithm: grid, seed: 0}}
scheduler: {{type: none}}
""" + sections


def shared_spec_text(scene_dir: Path) -> str:
    """Four tiny trials, two at a time: two learn (lr 1e-2), two cannot (lr 1e-7). Grid seed 10 proposes both
    learning trials first, so the frozen ones start after them and ASHA stops each at its first rung, whatever the
    timing. A fixed list value, renders of each completed trial (with a video), MLflow previews."""
    return f"""\
name: shared
data: {scene_dir}
profile: tiny
space:
  frames: {{values: [3, 12]}}
  seed: 0
  steps: 90
  {LR}: {{values: [1.0e-2, 1.0e-7]}}
  pipeline.model.num_proposal_samples_per_ray: {{value: [32, 16]}}
search: {{algorithm: grid, seed: 10}}
scheduler: {{type: asha, grace_period: 30, reduction_factor: 2}}
max_concurrent_trials: 2
resources: {{cpu: 1, gpu: 0}}
eval: {{max_images: 1, train_log_every: 10}}
checkpoints: {{keep: 3}}
tracking: {{preview_images: 1}}
render: {{circles: {{radii: [0.3], distances: [1.0], views: 4}}, trials: each, video: true}}
"""


@pytest.fixture(scope="session")
def shared_sweep(scene_dir, tmp_path_factory) -> Swept:
    folder = tmp_path_factory.mktemp("shared")
    spec = folder / "shared.yaml"
    spec.write_text(shared_spec_text(scene_dir))
    storage = folder / "sweeps"
    result = run_cli(str(spec), "--storage", str(storage))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Swept(spec, storage, "shared", pd.read_csv(storage / "shared" / "results.csv"), result)


def study_spec_text(scene_dir: Path) -> str:
    """A study: two frame counts as strata, two learning rates (one that learns, one frozen) as configurations,
    two seeds as replicates of each; the best trial of each frame count renders novel views. Grid seed 10 proposes
    the learning configurations first, so the frozen ones meet an earlier mean at every rung of their stratum and
    stop there, both replicates together."""
    return f"""\
name: study
data: {scene_dir}
profile: tiny
space:
  frames: {{values: [3, 12]}}
  seed: {{values: [0, 1]}}
  steps: 60
  {LR}: {{values: [1.0e-2, 1.0e-7]}}
replicates: seed
stratify: frames
search: {{algorithm: grid, seed: 10}}
scheduler: {{type: asha, grace_period: 20, reduction_factor: 2}}
max_concurrent_trials: 2
resources: {{cpu: 1, gpu: 0}}
eval: {{max_images: 1, train_log_every: 10}}
checkpoints: {{keep: 2}}
tracking: {{preview_images: 0}}
render: {{circles: {{radii: [0.3], distances: [1.0], views: 2}}, best_k: 1, per: frames}}
"""


@dataclass(frozen=True)
class Study(Swept):
    book_at_kill: dict  # the scheduler's rung book when the first run was killed


@pytest.fixture(scope="session")
def study_sweep(scene_dir, tmp_path_factory) -> Study:
    """The study, killed (SIGKILL, the whole process group) once the scheduler has decided a rung, then rerun to
    the end: every study test reads a sweep that went through a resume."""
    folder = tmp_path_factory.mktemp("study")
    spec = folder / "study.yaml"
    spec.write_text(study_spec_text(scene_dir))
    storage = folder / "sweeps"
    book = storage / "study" / RUNG_BOOK_FILE
    first = subprocess.Popen(
        [sys.executable, "-m", "nerftune.sweep", str(spec), "--storage", str(storage)],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not _decided(book):
            time.sleep(0.5)
        book_at_kill = json.loads(book.read_text())
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    result = run_cli(str(spec), "--storage", str(storage))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = pd.read_csv(storage / "study" / "results.csv")
    return Study(spec, storage, "study", table, result, book_at_kill)


def _decided(book: Path) -> bool:
    try:
        return any(json.loads(book.read_text())["decisions"].values())
    except (FileNotFoundError, json.JSONDecodeError):
        return False


@pytest.fixture(scope="session")
def one_trial(scene_dir, tmp_path_factory) -> Swept:
    """One tiny nerfacto trial of 12 frames and 300 steps, long enough for some geometry: the trial that the export
    tests hand to nerfstudio's tools and exporters (its exports log to its MLflow run) and the warm-start tests
    start from. Its proposal annealing saturates by step 20:
    nerfstudio's tools evaluate with it saturated (they run no training callbacks), nerftune with the value at the
    trial's last step, and the two agree once it has saturated.

    Its Ray finds the address file of a cluster that `ray start` started and that has died since: the sweep starts a
    Ray of its own all the same (Ray alone would try to join it)."""
    folder = tmp_path_factory.mktemp("one")
    spec = folder / "one.yaml"
    spec.write_text(
        f"""\
name: one
data: {scene_dir}
profile: tiny
space:
  frames: 12
  steps: 300
  pipeline.model.proposal_weights_anneal_max_num_iters: 20
scheduler: {{type: none}}
resources: {{cpu: 1, gpu: 0}}
tracking: {{checkpoints: none, images: none}}
"""
    )
    storage = folder / "sweeps"
    from servers import free_port

    ray_temp = Path(tempfile.mkdtemp(prefix="ntray-", dir="/tmp"))  # short: Ray's socket paths must fit in 107 bytes
    (ray_temp / "ray").mkdir()
    (ray_temp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
    try:
        result = run_cli(str(spec), "--storage", str(storage), env={"RAY_TMPDIR": str(ray_temp)})
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Swept(spec, storage, "one", pd.read_csv(storage / "one" / "results.csv"), result)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on 127.0.0.1 (a temporary data directory), with the database `mlflow`."""
    from servers import PASSWORD, start_postgres, stop_postgres

    server = start_postgres(PASSWORD)
    yield server
    stop_postgres(server)
