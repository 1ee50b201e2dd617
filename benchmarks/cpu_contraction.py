"""The fast path's scene contraction on the CPU: nerfacto's L-infinity contraction with its norm taken as max |x|
against nerfstudio's `torch.linalg.norm(ord=inf)`, as ratios measured in one run.

Builds two tiny nerfacto trainers of the same seed on one thread (a one-CPU trial), one with nerfstudio's contraction
and one with the fast one, the hash grid eager in both (or compiled in both, `--grid compiled`, as in trials of 1000
steps or more), then trains them alternately, `--chunk` steps at a time, and scores one test image with each,
alternately, for `--pairs` pairs. Prints each pair's ratio, their medians and ranges, and checks that both trained
the same losses and scored the same PSNR bit for bit (the fast contraction computes the same numbers). Usage:

    python benchmarks/cpu_contraction.py [--pairs 5] [--chunk 100] [--width 640] [--height 480] [--grid eager]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from synthetic_view import synthetic_view
from timing import interleaved, ratios, summary

from nerftune.nerf.config import build_config
from nerftune.nerf.loop import NerfTrainer, TrainChunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=100, help="steps each trainer trains per turn")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--grid", choices=["eager", "compiled"], default="eager", help="the hash grid, in both")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warm_up_steps = 20  # untimed: the first steps allocate
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        view = synthetic_view(work, args.width, args.height)
        trainers, generators, losses, psnr = {}, {}, {False: [], True: []}, {False: [], True: []}
        for fast in (False, True):  # one after the other: each seeds the global generators
            config = build_config("nerfacto", view, work / str(fast), 10**6, 0, "cpu", "tiny")
            trainers[fast] = NerfTrainer(config, fast=args.grid == "compiled", fast_contraction=fast)
            trainers[fast].train(warm_up_steps, on_chunk=lambda chunk, fast=fast: record(losses[fast], chunk))
            generators[fast] = own_generators()  # then each trains on as it would alone

        def steps_per_s(fast: bool) -> float:
            trainer = trainers[fast]
            with generators[fast]:
                start = time.perf_counter()
                trainer.train(trainer.step + args.chunk, on_chunk=lambda chunk: record(losses[fast], chunk))
                return args.chunk / (time.perf_counter() - start)

        def scoring_s(fast: bool) -> float:
            start = time.perf_counter()
            psnr[fast].append(trainers[fast].evaluate([0]).metrics["psnr"])
            return time.perf_counter() - start

        both = lambda measure: {"nerfstudio": lambda: measure(False), "fast": lambda: measure(True)}  # noqa: E731
        training = interleaved(both(steps_per_s), args.pairs)
        scoring = interleaved(both(scoring_s), args.pairs)
    train_speedups = ratios(training["fast"], training["nerfstudio"])
    score_speedups = ratios(scoring["nerfstudio"], scoring["fast"])
    rays = args.width * args.height
    print(f"\ntiny nerfacto, one thread, {args.width}x{args.height}, hash grid {args.grid}, {args.pairs} pairs")
    for index, pair in enumerate(zip(training["nerfstudio"], training["fast"], train_speedups), 1):
        print(f"training pair {index}: nerfstudio's contraction {pair[0]:5.1f} steps/s, fast {pair[1]:5.1f}, "
              f"ratio {pair[2]:.2f}")
    for index, pair in enumerate(zip(scoring["nerfstudio"], scoring["fast"], score_speedups), 1):
        print(f"scoring pair {index}: nerfstudio's contraction {pair[0]:5.2f} s ({rays / pair[0] / 1000:.1f} thousand "
              f"rays/s), fast {pair[1]:5.2f} s ({rays / pair[1] / 1000:.1f} thousand), ratio {pair[2]:.2f}")
    print(f"training speed-up fast / nerfstudio's: median {summary(train_speedups, 2)}")
    print(f"scoring speed-up nerfstudio's / fast: median {summary(score_speedups, 2)}")
    same = losses[True] == losses[False] and psnr[True] == psnr[False]
    print(f"the same {len(losses[True])} losses and {len(psnr[True])} PSNRs bit for bit: {'yes' if same else 'NO'} "
          f"(PSNR {psnr[False][-1]:.4f} and {psnr[True][-1]:.4f})")


class own_generators:
    """Swaps in a trainer's own state of the global random generators that training draws rays from (torch, numpy,
    Python's), so that trainers taking turns each train as they would alone; starts from the state at creation."""

    def __init__(self) -> None:
        self.states = torch.get_rng_state(), np.random.get_state(), random.getstate()

    def __enter__(self) -> None:
        self.others = torch.get_rng_state(), np.random.get_state(), random.getstate()
        torch.set_rng_state(self.states[0]), np.random.set_state(self.states[1]), random.setstate(self.states[2])

    def __exit__(self, *_: object) -> None:
        self.states = torch.get_rng_state(), np.random.get_state(), random.getstate()
        torch.set_rng_state(self.others[0]), np.random.set_state(self.others[1]), random.setstate(self.others[2])


def record(losses: list[float], chunk: TrainChunk) -> None:
    losses.extend(chunk.losses)


if __name__ == "__main__":
    main()
