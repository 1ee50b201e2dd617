"""Shared fixtures: a small synthetic scene, and spec files written into a test's folder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nerftune.data.synthetic import SceneOptions, write_scene

ROOT = Path(__file__).resolve().parents[1]
SMALL_SCENE = SceneOptions(frames=24, width=80, height=60)


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


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m nerftune.sweep ...` as a user would, in a fresh process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "nerftune.sweep", *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
