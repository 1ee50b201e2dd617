"""How fast each method trains on the CPU at each profile: the rates behind the plan's warning that a sweep's
training would take hours or days there (`nerftune/cpu_training_time.py`).

For each method and profile (tiny, small, default), a trainer on `--threads` threads (a trial with that many CPUs);
for a method with nerfstudio's hash grid (nerfacto), one with the grid as eager code and one with it compiled (as
`fast_path: auto` trains trials of 1000 steps or more), trained alternately (eager, compiled, eager, ...). Each
measurement trains about `--seconds`, `--pairs` times. A step's cost does not depend on the image size (a fixed
number of rays), so the scene is small. Prints each measurement and, per method, profile and grid, the median
steps/s and range; compile time is left out. Usage:

    python benchmarks/cpu_profiles.py [--methods nerfacto vanilla-nerf mipnerf] [--pairs 3] [--threads 1]
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
from nerftune.nerf.methods import has_hash_grid

PROFILES = ("tiny", "small", "default")
WARM_UP_STEPS = 3  # untimed: the first steps allocate (and, compiled, compile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["nerfacto", "vanilla-nerf", "mipnerf"])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads: a trial's `resources.cpu`")
    parser.add_argument("--seconds", type=float, default=20.0, help="about how long each measurement trains")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rates: dict[tuple[str, str], dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        view = synthetic_view(Path(tmp), 160, 120)
        for method in args.methods:
            grids = ("eager", "compiled") if has_hash_grid(method) else ("eager",)
            for profile in PROFILES:
                print(f"{method}, {profile}:", flush=True)
                trainers = {
                    grid: trainer(view, Path(tmp) / f"{method}-{profile}-{grid}", method, profile, grid == "compiled")
                    for grid in grids
                }
                chunks = {grid: steps_in(trained, args.seconds) for grid, trained in trainers.items()}
                rates[method, profile] = interleaved(
                    {grid: lambda grid=grid: steps_per_s(trainers[grid], chunks[grid]) for grid in grids}, args.pairs
                )
    print(f"\non the CPU, {args.threads} thread(s), steps/s: median (range) over {args.pairs} measurements")
    for (method, profile), figures in rates.items():
        said = "; ".join(f"{grid} {summary(values, 3)}" for grid, values in figures.items())
        if "compiled" in figures:
            speedup = statistics.median(figures["compiled"]) / statistics.median(figures["eager"])
            said += f"; compiled / eager {speedup:.2f}"
        print(f"{method} {profile}: {said}")


def trainer(view: Path, out: Path, method: str, profile: str, fast: bool) -> NerfTrainer:
    config = build_config(method, view, out, 10**6, 0, "cpu", profile)
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
