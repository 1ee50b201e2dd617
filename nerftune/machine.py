"""What this machine has, found without importing torch (2-3 s), so that checks and plans answer at once.

GPUs are listed by `nvidia-smi`, as far as CUDA_VISIBLE_DEVICES lets this process see them. A trial decides its own
device with torch (`nerf/device.py`), where Ray has set CUDA_VISIBLE_DEVICES for it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_mb: float


def visible_gpus() -> list[Gpu]:
    """The GPUs this process may use, from one `nvidia-smi` call (empty without a driver or with
    CUDA_VISIBLE_DEVICES=''): a sweep lists them once, in `preflight.prepare`, and every later reader uses that."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return []
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listed = subprocess.run(
            [smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    lines = [line.strip() for line in listed.stdout.splitlines() if line.strip()] if listed.returncode == 0 else []
    gpus = [_gpu(line) for line in lines]
    if visible is None:
        return gpus
    wanted = [part.strip() for part in visible.split(",") if part.strip()]
    if all(part.isdigit() for part in wanted):
        return [gpus[int(part)] for part in wanted if int(part) < len(gpus)]
    return gpus[: len(wanted)]  # UUIDs: as many as are named


def _gpu(line: str) -> Gpu:
    name, _, memory = line.rpartition(",")  # the name may hold a comma, the number does not
    try:
        return Gpu(name.strip(), float(memory))
    except ValueError:  # "[N/A]" (a MIG slice): unknown, which `gpu: auto` treats as no room to pack
        return Gpu(name.strip(), 0.0)


def cpu_count() -> int:
    """The CPUs this process may run on (`taskset`, a batch job's allocation), within a container's CPU quota: what
    a Ray of the sweep's own is given, so that the plan, the check of a trial's resources and Ray agree."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cpu_quota()
    return max(1, min(allowed, int(quota))) if quota else allowed


def _cpu_quota() -> float | None:
    """A container's CPU quota in CPUs (cgroup v2's cpu.max, else v1's CFS files), as Ray reads it; None: no quota."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def memory_gb() -> float | None:
    """This machine's memory in GB, within a container's limit (cgroup v2's memory.max, else v1's); None: unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            total = min(total, int(Path(limit_file).read_text()))  # "max" (no limit) is no number
        except (OSError, ValueError):
            continue
    return total / 1e9


def mps_running() -> bool:
    """Whether NVIDIA's Multi-Process Service runs for this process: its control daemon's socket in the pipe
    directory CUDA uses (CUDA_MPS_PIPE_DIRECTORY, else /tmp/nvidia-mps). Under MPS the kernels of trials that share
    a GPU can run at once; without it the GPU takes their processes in turn, so packing only fills its idle time."""
    pipes = Path(os.environ.get("CUDA_MPS_PIPE_DIRECTORY") or "/tmp/nvidia-mps")
    try:
        return (pipes / "control").is_socket()
    except OSError:
        return False


def tcnn_installed() -> bool:
    """Whether tiny-cuda-nn's Python module is installed (found without importing it)."""
    return importlib.util.find_spec("tinycudann") is not None
