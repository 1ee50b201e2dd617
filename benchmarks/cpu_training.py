"""Training on the CPU: nerfstudio's eager hash grid against the compiled one (what `fast_path: auto` does on the
CPU in trials of 1000 steps or more), as ratios measured in one run.

Builds two tiny nerfacto trainers of the same seed on one thread (a one-CPU trial), the second compiling its hash
grids (its compile time printed apart), then trains them alternately, `--chunk` steps at a time, for `--pairs`
pairs. Prints each pair's steps/s and ratio compiled / eager, their median and range, the steps after which
compiling has paid for itself, and both models' test PSNR at the end (one seed each: they differ within seed
noise, as compiled code rounds otherwise). For a machine's first compile, run it with an empty kernel cache:
`TORCHINDUCTOR_CACHE_DIR=$(mktemp -d)`. With `--seeds N`, it then trains N seeds each way (from `--first-seed` on)
for `--seed-steps` steps and compares their test PSNRs seed by seed (the compiled grid computes the same values as
eager code, its position gradients within 1e-7 of them, and training amplifies that rounding into seed-like noise).
With `--rays N`, a step trains N rays instead of the tiny profile's 256: at a few dozen, a step's time is Python's
and torch's dispatch rather than arithmetic, as on a GPU that waits on its host. `--kind model` compiles nerfacto's
whole training step (forward, losses, backward) instead of the grids (`compiled_model.py`), and `--baseline grid`
compares it with the compiled grids rather than eager code; `--baseline host-rays` with the whole step compiled
from the rays nerfstudio's code makes before it (as it was before the rays of perspective cameras joined the graph,
`perspective_rays.py`). `--eager-random` has compiled code draw its random numbers as eager code does (inductor's
`fallback_random`): with the same draws, a PSNR gap left between the seeds' pairs is the compiled arithmetic's, not
the random streams'. Usage:

    python benchmarks/cpu_training.py [--pairs 5] [--chunk 100] [--width 320] [--height 240] [--rays 32]
    python benchmarks/cpu_training.py --pairs 1 --seeds 6 --seed-steps 1000
    python benchmarks/cpu_training.py --kind model --baseline grid --rays 32
    python benchmarks/cpu_training.py --kind model --baseline host-rays --rays 32
    python benchmarks/cpu_training.py --kind model --pairs 1 --seeds 6 --first-seed 6 --seed-steps 1000
    python benchmarks/cpu_training.py --kind model --pairs 1 --seeds 6 --seed-steps 1000 --eager-random
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
from synthetic_view import synthetic_view
from timing import interleaved, ratios, summary

from nerftune.cpu_compile import TRAINING_COMPILE_STEPS
from nerftune.nerf.config import build_config
from nerftune.nerf.loop import NerfTrainer
from nerftune.nerf.perspective_rays import PerspectiveRays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=100, help="steps each trainer trains per turn")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--seeds", type=int, default=0, help="then compare the test PSNR of this many seeds")
    parser.add_argument("--seed-steps", type=int, default=1000)
    parser.add_argument("--first-seed", type=int, default=0, help="the seeds compared are this one and the next")
    parser.add_argument("--rays", type=int, help="rays a training step (default: the tiny profile's)")
    parser.add_argument("--kind", default="grid", choices=["grid", "model"], help="what the fast path compiles")
    parser.add_argument("--baseline", default="eager", choices=["eager", "grid", "host-rays"], help="compared with")
    parser.add_argument("--eager-random", action="store_true", help="compiled code draws random numbers as eager does")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with torch._inductor.config.patch(fallback_random=args.eager_random):
        compare(args)


def compare(args: argparse.Namespace) -> None:
    warm_up_steps = 20  # untimed: the first steps allocate
    total = warm_up_steps + args.pairs * args.chunk
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        view = synthetic_view(work, args.width, args.height)
        base, kind = args.baseline, f"compiled {args.kind}"
        setups = {base: {"fast": base != "eager"}, kind: {"fast": True, "kind": args.kind}}
        if base == "host-rays":
            setups[base] = {"fast": True, "kind": "model", "rays_in_graph": False}
        trainers = {}
        for name, setup in setups.items():  # one after the other: each seeds the global generators
            trainers[name] = trained(view, work / name, total, 0, until=warm_up_steps, rays=args.rays, **setup)

        def steps_per_s(name: str) -> float:
            trainer = trainers[name]
            start = time.perf_counter()
            trainer.train(trainer.step + args.chunk)
            return args.chunk / (time.perf_counter() - start)

        figures = interleaved({name: lambda name=name: steps_per_s(name) for name in trainers}, args.pairs)
        psnr = {name: trainer.evaluate().metrics["psnr"] for name, trainer in trainers.items()}
        seeds = [
            [trained(view, work / f"{seed}-{name}", args.seed_steps, seed, **setup).evaluate().metrics["psnr"]
             for name, setup in setups.items()]
            for seed in range(args.first_seed, args.first_seed + args.seeds)
        ]
    compile_s = trainers[kind].timings.compile_s - trainers[base].timings.compile_s
    speedups = ratios(figures[kind], figures[base])
    slower, faster = statistics.median(figures[base]), statistics.median(figures[kind])
    rays = trainers[base].rays_per_batch
    print(f"\ntiny nerfacto, one thread, {args.width}x{args.height}, {rays} rays a step, {args.pairs} pairs of "
          f"{args.chunk} steps")
    print(f"compiling before training, {kind} beyond {base}: {compile_s:.1f} s (torch's kernel cache as it was)")
    for index, (slow, fast, ratio) in enumerate(zip(figures[base], figures[kind], speedups), 1):
        print(f"pair {index}: {base} {slow:5.1f} steps/s, {kind} {fast:5.1f} steps/s ({1000 / fast:.1f} ms a "
              f"step), ratio {ratio:.2f}")
    print(f"speed-up {kind} / {base}: median {summary(speedups, 2)}")
    saved = 1 / slower - 1 / faster
    print(f"saved {saved * 1000:.1f} ms a step: compiling pays after {compile_s / saved:.0f} steps "
          f"(auto compiles the grids in trials of {TRAINING_COMPILE_STEPS} steps or more)")
    print(f"test PSNR after {total} steps: {base} {psnr[base]:.3f}, {kind} {psnr[kind]:.3f} (one seed each)")
    if seeds:
        drawn = "eager code's random numbers in both" if args.eager_random else "each its own random numbers"
        print_seeds(seeds, f"{args.seed_steps} steps, {drawn}", base, kind, args.first_seed)


def trained(
    view: Path,
    out: Path,
    steps: int,
    seed: int,
    fast: bool = False,
    until: int | None = None,
    rays: int | None = None,
    kind: str = "grid",
    rays_in_graph: bool = True,
) -> NerfTrainer:
    config = build_config("nerfacto", view, out, steps, seed, "cpu", "tiny")
    if rays:
        config.pipeline.datamanager.train_num_rays_per_batch = rays
    with contextlib.nullcontext() if rays_in_graph else mock.patch.object(PerspectiveRays, "of", return_value=None):
        trainer = NerfTrainer(config, fast=fast, kind=kind, fast_contraction=True)  # as `fast_path: auto` has
    trainer.train(steps if until is None else until)
    return trainer


def print_seeds(seeds: list[list[float]], trained: str, base: str, kind: str, first: int) -> None:
    print(f"\ntest PSNR after {trained}, seed by seed ({base}, {kind}, difference):")
    for seed, (eager, compiled) in enumerate(seeds, first):
        print(f"seed {seed}: {eager:.3f} {compiled:.3f} {compiled - eager:+.3f}")
    columns = {base: [eager for eager, _ in seeds], kind: [compiled for _, compiled in seeds]}
    columns["difference"] = [compiled - eager for eager, compiled in seeds]
    for name, values in columns.items():
        spread = f" +- {statistics.stdev(values):.3f}" if len(values) > 1 else ""
        print(f"{name}: mean {statistics.mean(values):.3f}{spread} (sd over seeds)")


if __name__ == "__main__":
    main()
