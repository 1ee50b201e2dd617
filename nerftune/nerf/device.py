"""Which device a trial trains on, and what the machine has."""

from __future__ import annotations

import gc
import os
from typing import Any

import torch


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def for_trial(cpus: float) -> str:
    """CUDA when Ray gave this worker a GPU (it sets CUDA_VISIBLE_DEVICES), else the CPU with the trial's threads."""
    if torch.cuda.is_available():
        # a reused worker: the previous trial's cached blocks go back to the GPU, and its peak is not this trial's
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return "cuda"
    torch.set_num_threads(max(1, int(cpus)))
    return "cpu"


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work, so that a timer around it measures the work (a no-op on the CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()


def peak_memory_mb() -> float | None:
    """Peak GPU memory allocated by this process's tensors, where there is a GPU."""
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def describe(device: str) -> dict[str, Any]:
    """The device a trial trains on, as recorded with it: the GPUs Ray let it see, their model and memory."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if device != "cuda":
        return {"cuda_visible_devices": visible, "gpu_name": None, "gpu_memory_mb": None}
    index = torch.cuda.current_device()
    return {
        "cuda_visible_devices": visible,
        "gpu_name": torch.cuda.get_device_name(index),
        "gpu_memory_mb": round(torch.cuda.get_device_properties(index).total_memory / 2**20),
    }
