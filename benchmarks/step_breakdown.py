"""Where a training step's GPU time goes: the kernels of a few more steps of a trained `NerfTrainer`, by torch's
profiler, summed by name, and where a step makes the CPU wait for the GPU. For `gpu.py`: it says whether a step
waits on the GPU (busy near 1: fewer or faster kernels pay) or on Python launching kernels and waiting for them
(busy well below 1: packing trials, fewer waits or CUDA graphs pay)."""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from typing import Any, Iterable

from nerftune.nerf.probe import profiled_kernels
from nerftune.packing import busy_fraction

PROFILED_STEPS = 20
SYNC_STEPS = 5
TOP = 12


def step_breakdown(trainer: Any, steps_per_s: float) -> dict[str, Any]:
    """`PROFILED_STEPS` more steps of `trainer` (on CUDA) profiled: the GPU's busy fraction against a step's
    unprofiled time, kernels launched a step, and the `TOP` kernels by device time a step."""
    kernels = profiled_kernels(trainer, trainer.step + PROFILED_STEPS)
    return summarise(kernels, PROFILED_STEPS, PROFILED_STEPS / steps_per_s) | synchronisations(trainer)


def synchronisations(trainer: Any) -> dict[str, Any]:
    """How often a step makes the CPU wait for the GPU (`.item()`, copies to the CPU: each one stops the CPU from
    queueing the next kernels while the GPU works), over `SYNC_STEPS` more steps, and where (torch's sync debug
    mode warns at each; the loop's own loss read-back, once a chunk, is among them)."""
    import torch

    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.train(trainer.step + SYNC_STEPS)
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    waits = [w for w in caught if "called a synchronizing CUDA operation" in str(w.message)]
    sites = Counter(f"{w.filename.split('site-packages/')[-1]}:{w.lineno}" for w in waits)
    return {
        "syncs_per_step": sum(sites.values()) / SYNC_STEPS,
        "sync_sites": {site: count / SYNC_STEPS for site, count in sites.most_common(6)},
    }


def summarise(kernels: Iterable[tuple[str, float, float]], steps: int, unprofiled_s: float) -> dict[str, Any]:
    """Kernels (name, start and end in microseconds) of `steps` steps that took `unprofiled_s` seconds
    unprofiled: the busy fraction, kernels a step, device milliseconds a step, and the costliest by name."""
    kernels = list(kernels)
    by_name: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for name, start, end in kernels:
        by_name[name][0] += end - start
        by_name[name][1] += 1
    device_ms = sum(total for total, _ in by_name.values()) / 1000 / steps
    top = sorted(by_name.items(), key=lambda item: -item[1][0])[:TOP]
    return {
        "gpu_busy": busy_fraction([(start, end) for _, start, end in kernels], unprofiled_s),
        "step_ms": 1000 * unprofiled_s / steps,
        "device_ms_per_step": device_ms,
        "kernels_per_step": len(kernels) / steps,
        "top": [
            {"kernel": name[:90], "ms_per_step": total / 1000 / steps, "calls_per_step": count / steps}
            for name, (total, count) in top
        ],
    }


def print_breakdown(label: str, breakdown: dict[str, Any]) -> None:
    print(
        f"  {label}: a step {breakdown['step_ms']:.1f} ms, its kernels {breakdown['device_ms_per_step']:.1f} ms "
        f"({breakdown['kernels_per_step']:.0f} kernels; GPU busy {breakdown['gpu_busy']:.0%}), "
        f"{breakdown['syncs_per_step']:.1f} waits for the GPU a step: {breakdown['sync_sites']}"
    )
    for row in breakdown["top"]:
        print(f"    {row['ms_per_step']:6.2f} ms  {row['calls_per_step']:5.1f}x  {row['kernel']}")
