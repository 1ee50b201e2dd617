"""Training on the CPU: nerfstudio's eager hash grid against the compiled one (what `fast_path: auto` does on the
CPU in trials of 1000 steps or more), as ratios measured in one run.

Builds two tiny nerfacto trainers of the same seed on one thread (a one-CPU trial), the second compiling its hash
grids (its compile time printed apart), then trains them alternately, `--chunk` steps at a time, for `--pairs`
pairs. Prints each pair's steps/s and ratio compiled / eager, their median and range, the steps after which
compiling has paid for itself, and both models' test PSNR at the end (one seed each: they differ within seed
noise, as compiled code rounds otherwise). For a machine's first compile, run it with an empty kernel cache:
`TORCHINDUCTOR_CACHE_DIR=$(mktemp -d)`. With `--seeds N`, it then trains N seeds each way for `--seed-steps` steps
and compares their test PSNRs seed by seed (the compiled grid computes the same values as eager code, its position
gradients within 1e-7 of them, and training amplifies that rounding into seed-like noise). With `--rays N`, a step
trains N rays instead of the tiny profile's 256: at a few dozen, a step's time is Python's and torch's dispatch
rather than arithmetic, as on a GPU that waits on its host. Usage:

    python benchmarks/cpu_training.py [--pairs 5] [--chunk 100] [--width 320] [--height 240] [--rays 32]
    python benchmarks/cpu_training.py --pairs 1 --seeds 6 --seed-steps 1000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from synthetic_view import synthetic_view
from timing import interleaved, ratios, summary

from nerftune.cpu_compile import TRAINING_COMPILE_STEPS
from nerftune.nerf.config import build_config
from nerftune.nerf.loop import NerfTrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=100, help="steps each trainer trains per turn")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--seeds", type=int, default=0, help="then compare the test PSNR of this many seeds")
    parser.add_argument("--seed-steps", type=int, default=1000)
    parser.add_argument("--rays", type=int, help="rays a training step (default: the tiny profile's)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warm_up_steps = 20  # untimed: the first steps allocate
    total = warm_up_steps + args.pairs * args.chunk
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        view = synthetic_view(work, args.width, args.height)
        trainers = {}
        for fast in (False, True):  # one after the other: each seeds the global generators
            trainers[fast] = trained(view, work / str(fast), total, 0, fast, warm_up_steps, args.rays)

        def steps_per_s(fast: bool) -> float:
            trainer = trainers[fast]
            start = time.perf_counter()
            trainer.train(trainer.step + args.chunk)
            return args.chunk / (time.perf_counter() - start)

        figures = interleaved({"eager": lambda: steps_per_s(False), "compiled": lambda: steps_per_s(True)}, args.pairs)
        psnr = {fast: trainer.evaluate().metrics["psnr"] for fast, trainer in trainers.items()}
        seeds = [
            [trained(view, work / f"{seed}-{fast}", args.seed_steps, seed, fast).evaluate().metrics["psnr"]
             for fast in (False, True)]
            for seed in range(args.seeds)
        ]
    compile_s = trainers[True].timings.compile_s
    speedups = ratios(figures["compiled"], figures["eager"])
    eager, compiled = statistics.median(figures["eager"]), statistics.median(figures["compiled"])
    rays = trainers[False].rays_per_batch
    print(f"\ntiny nerfacto, one thread, {args.width}x{args.height}, {rays} rays a step, {args.pairs} pairs of "
          f"{args.chunk} steps")
    print(f"compiling before training: {compile_s:.1f} s (with torch's kernel cache as it was)")
    for index, (slow, fast, ratio) in enumerate(zip(figures["eager"], figures["compiled"], speedups), 1):
        print(f"pair {index}: eager {slow:5.1f} steps/s, compiled {fast:5.1f} steps/s ({1000 / fast:.1f} ms a step), "
              f"ratio {ratio:.2f}")
    print(f"speed-up compiled / eager: median {summary(speedups, 2)}")
    saved = 1 / eager - 1 / compiled
    print(f"saved {saved * 1000:.1f} ms a step: compiling pays after {compile_s / saved:.0f} steps "
          f"(auto compiles trials of {TRAINING_COMPILE_STEPS} steps or more)")
    print(f"test PSNR after {total} steps: eager {psnr[False]:.3f}, compiled {psnr[True]:.3f} (one seed each)")
    if seeds:
        print_seeds(seeds, args.seed_steps)


def trained(
    view: Path, out: Path, steps: int, seed: int, fast: bool, until: int | None = None, rays: int | None = None
) -> NerfTrainer:
    config = build_config("nerfacto", view, out, steps, seed, "cpu", "tiny")
    if rays:
        config.pipeline.datamanager.train_num_rays_per_batch = rays
    trainer = NerfTrainer(config, fast=fast, fast_contraction=True)  # as `fast_path: auto` has it, both ways
    trainer.train(steps if until is None else until)
    return trainer


def print_seeds(seeds: list[list[float]], steps: int) -> None:
    print(f"\ntest PSNR after {steps} steps, seed by seed (eager, compiled, difference):")
    for seed, (eager, compiled) in enumerate(seeds):
        print(f"seed {seed}: {eager:.3f} {compiled:.3f} {compiled - eager:+.3f}")
    columns = {"eager": [eager for eager, _ in seeds], "compiled": [compiled for _, compiled in seeds]}
    columns["difference"] = [compiled - eager for eager, compiled in seeds]
    for name, values in columns.items():
        spread = f" +- {statistics.stdev(values):.3f}" if len(values) > 1 else ""
        print(f"{name}: mean {statistics.mean(values):.3f}{spread} (sd over seeds)")


if __name__ == "__main__":
    main()
