"""Scoring a test set on the CPU: nerfstudio's eager hash grid against the hash grid compiled for scoring only (what
`fast_path: auto` does on the CPU where the test set is large), as ratios measured in one run.

Trains two tiny nerfacto models of the same seed on one thread (bit-identical: compiled scoring leaves training as
eager code's), then scores one test image with each, alternately, for `--pairs` pairs. Prints the compile time, each
pair's seconds and ratio eager / compiled (the speed-up), the median and range of the ratios, the rays a second of
each, and the PSNR of both (the same). Usage:

    python benchmarks/cpu_scoring.py [--width 640] [--height 480] [--pairs 3] [--steps 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from synthetic_view import synthetic_view
from timing import interleaved, ratios, summary

from nerftune.nerf.config import build_config
from nerftune.nerf.loop import NerfTrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)  # a one-CPU trial
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        view = synthetic_view(work, args.width, args.height)
        trainers = {}
        for compiled in (False, True):  # one after the other: each seeds the global generators
            config = build_config("nerfacto", view, work / str(compiled), args.steps, 0, "cpu", "tiny")
            trainers[compiled] = NerfTrainer(config, compiled_scoring=compiled, fast_contraction=True)  # as auto
            trainers[compiled].train(args.steps)
        scores: dict[bool, float] = {}

        def seconds(compiled: bool) -> float:
            start = time.perf_counter()
            scores[compiled] = trainers[compiled].evaluate([0]).metrics["psnr"]
            return time.perf_counter() - start

        figures = interleaved({"eager": lambda: seconds(False), "compiled": lambda: seconds(True)}, args.pairs)
    rays = args.width * args.height
    pairs = ratios(figures["eager"], figures["compiled"])
    print(f"\ntiny nerfacto after {args.steps} steps, one test image of {args.width}x{args.height}, one thread")
    print(f"compiling for scoring: {trainers[True].timings.compile_s:.1f} s (torch keeps the kernels on disk: a "
          "machine's first compile, with TORCHINDUCTOR_CACHE_DIR empty, takes longer)")
    for index, (eager, compiled, ratio) in enumerate(zip(figures["eager"], figures["compiled"], pairs), 1):
        print(f"pair {index}: eager {eager:6.2f} s ({rays / eager / 1000:.1f} thousand rays/s), compiled "
              f"{compiled:6.2f} s ({rays / compiled / 1000:.1f} thousand rays/s), ratio {ratio:.2f}")
    print(f"speed-up eager / compiled: median {summary(pairs, 2)}")
    print(f"PSNR eager {scores[False]:.4f}, compiled {scores[True]:.4f}")


if __name__ == "__main__":
    main()
