"""One copy of a packing measurement (`nerftune/packing.py`): train a configuration for a few dozen steps and
write its steps/s and peak GPU memory as JSON.

    python -m nerftune.nerf.probe JOB.json --copies N --barrier FOLDER --out RESULT.json

The copies of one measurement wait for each other after their warm-up (each touches a file in the barrier folder),
so that the steps they time all run at the same time. A copy alone on a GPU then also measures how busy it keeps the
GPU (`packing.busy_fraction`), which bounds what packing can gain.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from nerftune.cli import described
from nerftune.data.dataset import load_dataset, write_view
from nerftune.nerf import device as nerf_device
from nerftune.nerf.config import build_config
from nerftune.nerf.fast_path import choose
from nerftune.nerf.loop import NerfTrainer
from nerftune.packing import busy_fraction
from nerftune.trials import TrialRecipe

WARMUP_STEPS = 10
BUSY_STEPS = 10  # profiled after the timed steps, alone on the GPU
CUDA_CONTEXT_MB = 500  # what each process's CUDA context takes beside its tensors (torch does not count it)
BARRIER_TIMEOUT_S = 600


def main() -> None:
    parser = argparse.ArgumentParser(description=described(__doc__))
    parser.add_argument("job")
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--barrier", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    job = json.loads(Path(args.job).read_text())
    result = train_probe(job, args.copies, Path(args.barrier))
    Path(args.out).write_text(json.dumps(result))


def train_probe(job: dict, copies: int, barrier: Path) -> dict[str, float]:
    configuration = job["configuration"]
    device = nerf_device.for_trial(job["cpus"])
    # Ray sets OMP_NUM_THREADS to a trial's CPUs on a GPU too: copies that each took every core would contend for
    # the CPU in a way the sweep's trials do not
    torch.set_num_threads(max(1, int(job["cpus"])))
    with tempfile.TemporaryDirectory(prefix="nerftune-probe-") as tmp:
        dataset = load_dataset(job["data_dir"], job["test_every"], check_images=False)
        view = write_view(dataset, dataset.train_indices(configuration["frames"]), Path(tmp) / "view")
        recipe = TrialRecipe("probe", configuration, job["profile"], job["data_dir"], job["test_every"], str(view))
        config = build_config(
            configuration["method"], view, Path(tmp) / "out", 10**6, 0, device, job["profile"], recipe.overrides
        )
        # as a trial of the sweep trains (on the CPU, `auto` as in a short trial: no compiling)
        trainer = NerfTrainer(config, **choose(job["fast_path"], config, device, steps=0, test_rays=0))
        trainer.train(WARMUP_STEPS)
        _wait_for_copies(barrier, copies)
        nerf_device.synchronize(device)
        start = time.perf_counter()
        trainer.train(WARMUP_STEPS + job["steps"])
        nerf_device.synchronize(device)
        steps_per_s = job["steps"] / (time.perf_counter() - start)
        alone_on_gpu = device == "cuda" and copies == 1
        busy = gpu_busy(trainer, WARMUP_STEPS + job["steps"], steps_per_s) if alone_on_gpu else None
    reserved = torch.cuda.max_memory_reserved() / 2**20 + CUDA_CONTEXT_MB if device == "cuda" else 0.0
    return {"steps_per_s": steps_per_s, "peak_mb": reserved, "gpu_busy": busy}


def gpu_busy(trainer: NerfTrainer, done: int, steps_per_s: float) -> float | None:
    """The fraction of a step's time the GPU spends on this process's kernels and copies: their device time over
    `BUSY_STEPS` more steps (CUPTI, through torch's profiler), against the time a step took unprofiled (the
    profiler slows the CPU side, not the kernels). None where the profiler fails: it only explains the curve."""
    try:
        kernels = profiled_kernels(trainer, done + BUSY_STEPS)
    except Exception:  # a profiler that cannot start on this machine must not cost the packing measurement
        return None
    return busy_fraction([(start, end) for _, start, end in kernels], BUSY_STEPS / steps_per_s)


def profiled_kernels(trainer: NerfTrainer, until: int) -> list[tuple[str, float, float]]:
    """The GPU work (kernels and copies: name, start and end in microseconds) of training `trainer` to step
    `until`, by torch's profiler (CUPTI)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as recorded:
        trainer.train(until)
        torch.cuda.synchronize()
    on_gpu = [e for e in recorded.events() if e.device_type == DeviceType.CUDA]
    return [(e.name, e.time_range.start, e.time_range.end) for e in on_gpu]


def _wait_for_copies(barrier: Path, copies: int) -> None:
    barrier.mkdir(parents=True, exist_ok=True)
    (barrier / str(os.getpid())).touch()
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while len(list(barrier.iterdir())) < copies:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the other copies did not start within {BARRIER_TIMEOUT_S} s")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
