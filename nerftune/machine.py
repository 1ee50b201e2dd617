"""What this machine has, found without importing torch (2-3 s), so that checks and plans answer at once.

GPUs are listed by `nvidia-smi`, as far as CUDA_VISIBLE_DEVICES lets this process see them. A trial decides its own
device with torch (`nerf/device.py`), where Ray has set CUDA_VISIBLE_DEVICES for it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess


def gpu_names() -> list[str]:
    """The names of the GPUs this process may use (empty without a driver or with CUDA_VISIBLE_DEVICES='')."""
    return _visible_gpus("name")


def gpu_memory_mb() -> list[float]:
    """The memory of each GPU this process may use, in MiB."""
    return [float(value) for value in _visible_gpus("memory.total", ",nounits")]


def _visible_gpus(field: str, units: str = "") -> list[str]:
    """One `nvidia-smi` field of each GPU that CUDA_VISIBLE_DEVICES lets this process see."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return []
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listed = subprocess.run(
            [smi, f"--query-gpu={field}", f"--format=csv,noheader{units}"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return []
    values = [line.strip() for line in listed.stdout.splitlines() if line.strip()] if listed.returncode == 0 else []
    if visible is None:
        return values
    wanted = [part.strip() for part in visible.split(",") if part.strip()]
    if all(part.isdigit() for part in wanted):
        return [values[int(part)] for part in wanted if int(part) < len(values)]
    return values[: len(wanted)]  # UUIDs: as many as are named


def gpu_count() -> int:
    return len(gpu_names())


def tcnn_installed() -> bool:
    """Whether tiny-cuda-nn's Python module is installed (found without importing it)."""
    return importlib.util.find_spec("tinycudann") is not None
