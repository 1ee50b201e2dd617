"""What makes a sweep's numbers reproducible and comparable: spec, test set, versions, machine, code."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

from nerftune.machine import tcnn_installed
from nerftune.preflight import Prepared
from nerftune.spec import spec_hash
from nerftune.versions import installed_versions


def provenance(prepared: Prepared) -> dict[str, Any]:
    values: dict[str, Any] = {
        "spec_hash": spec_hash(prepared.spec_path),
        **_per_scene(prepared),
        "trials": prepared.spec.trial_count,
        "search": prepared.spec.search.algorithm,
        "scheduler": prepared.spec.scheduler.type,
        "host": socket.gethostname(),
        "gpu": ", ".join(gpu.name for gpu in prepared.gpus) or "none",
        "tiny_cuda_nn": "installed" if tcnn_installed() else "not installed",
        "git_commit": git_commit() or "unknown",
    }
    values.update({f"version.{package}": found for package, found in installed_versions().items()})
    return values


def _per_scene(prepared: Prepared) -> dict[str, Any]:
    """The data and test set: as values of one scene, or as `name: value` lists of a study's several."""
    scenes = prepared.scenes.values()
    if len(prepared.scenes) == 1:
        (scene,) = scenes
        return {
            "test_hash": scene.dataset.test_hash,
            "data_hash": scene.dataset.data_hash,
            "test_frames": len(scene.dataset.test_indices),
            "data": str(scene.data_dir),
        }
    return {
        "test_hash": "; ".join(f"{s.name}: {s.dataset.test_hash}" for s in scenes),
        "data_hash": "; ".join(f"{s.name}: {s.dataset.data_hash}" for s in scenes),
        "test_frames": "; ".join(f"{s.name}: {len(s.dataset.test_indices)}" for s in scenes),
        "data": "; ".join(f"{s.name}: {s.data_dir}" for s in scenes),
    }


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None
