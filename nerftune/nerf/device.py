"""Which device a trial trains on, and what the machine has."""

from __future__ import annotations

import torch


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def for_trial(cpus: float) -> str:
    """CUDA when Ray gave this worker a GPU (it sets CUDA_VISIBLE_DEVICES), else the CPU with the trial's threads."""
    if torch.cuda.is_available():
        return "cuda"
    torch.set_num_threads(max(1, int(cpus)))
    return "cpu"


def peak_memory_mb() -> float | None:
    """Peak GPU memory allocated by this process's tensors, where there is a GPU."""
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
