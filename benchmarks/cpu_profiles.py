"""How fast nerfacto trains on the CPU at each profile: the rates behind the plan's warning that a sweep's training
would take hours or days there (`nerftune/cpu_training_time.py`).

For each profile (tiny, small, default), one nerfacto trainer with nerfstudio's eager hash grid and one with it
compiled (as `fast_path: auto` trains trials of 1000 steps or more), each on `--threads` threads (a trial with that
many CPUs), trained alternately (eager, compiled, eager, ...) for `--pairs` pairs of a few seconds each. A step's cost
does not depend on the image size (a fixed number of rays), so the scene is small. Prints each measurement and, per
profile and grid, the median steps/s and range; compile time is left out. Usage:

    python benchmarks/cpu_profiles.py [--pairs 3] [--threads 1] [--seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from synthetic_view import synthetic_view
from timing import interleaved, summary

from nerftune.nerf.config import build_config
from nerftune.nerf.loop import NerfTrainer

PROFILES = ("tiny", "small", "default")
WARM_UP_STEPS = 3  # untimed: the first steps allocate (and, compiled, compile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads: a trial's `resources.cpu`")
    parser.add_argument("--seconds", type=float, default=20.0, help="about how long each measurement trains")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rates: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        view = synthetic_view(Path(tmp), 160, 120)
        for profile in PROFILES:
            print(f"{profile}:", flush=True)
            trainers = {
                grid: trainer(view, Path(tmp) / f"{profile}-{grid}", profile, fast=grid == "compiled")
                for grid in ("eager", "compiled")
            }
            chunks = {grid: steps_in(trainer_, args.seconds) for grid, trainer_ in trainers.items()}
            rates[profile] = interleaved(
                {grid: lambda grid=grid: steps_per_s(trainers[grid], chunks[grid]) for grid in trainers}, args.pairs
            )
    print(f"\nnerfacto on the CPU, {args.threads} thread(s), steps/s: median (range) over {args.pairs} measurements")
    for profile, figures in rates.items():
        eager, compiled = (summary(figures[grid], 3) for grid in ("eager", "compiled"))
        speedup = statistics.median(figures["compiled"]) / statistics.median(figures["eager"])
        print(f"{profile:8s} eager {eager}; compiled {compiled}; compiled / eager {speedup:.2f}")


def trainer(view: Path, out: Path, profile: str, fast: bool) -> NerfTrainer:
    config = build_config("nerfacto", view, out, 10**6, 0, "cpu", profile)
    trained = NerfTrainer(config, fast=fast, fast_contraction=True)  # as `fast_path: auto` has it
    trained.train(WARM_UP_STEPS)
    return trained


def steps_in(trained: NerfTrainer, seconds: float) -> int:
    """How many steps take about `seconds`, from one more step timed."""
    start = time.perf_counter()
    trained.train(trained.step + 1)
    return max(1, round(seconds / (time.perf_counter() - start)))


def steps_per_s(trained: NerfTrainer, steps: int) -> float:
    start = time.perf_counter()
    trained.train(trained.step + steps)
    return steps / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
