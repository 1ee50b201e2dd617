"""Compiling nerfacto's whole training step (`fast_path: compiled-step`) on the CPU: with nerfstudio's `trunc_exp`
traced as plain torch operations (`traceable_trunc_exp.py`, what nerftune does) against nerfstudio's
autograd.Function, as ratios measured in one run.

Each measurement is a new process (dynamo keeps what it traced in the process) that builds a tiny nerfacto trainer
of the whole-step kind on one thread (a one-CPU trial) and prints its `compile_s`: both graphs of the step (proposal
networks trained and not) and the scoring grids, before training. The two ways alternate, `--pairs` pairs, after
one unmeasured run of each to fill torch's kernel caches (the common case: a sweep's trials after its first);
`--cold` gives every run an empty cache instead (a machine's first compile). Prints each pair's seconds, the ratio
Function / traced, their median and range. Usage:

    python benchmarks/compile_time.py [--pairs 3] [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

from synthetic_view import synthetic_view
from timing import interleaved, ratios, summary

WAYS = {"traced": "trunc_exp as plain operations", "function": "nerfstudio's autograd.Function"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="an empty kernel cache for every run")
    parser.add_argument("--child", choices=list(WAYS), help=argparse.SUPPRESS)
    parser.add_argument("--view", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps({"compile_s": compile_seconds(args.view, args.child == "traced")}))
        return
    with tempfile.TemporaryDirectory() as work:
        view = synthetic_view(Path(work), 80, 60)
        run = lambda way: lambda: child_compile_seconds(view, way, Path(work), args.cold)  # noqa: E731
        if not args.cold:
            for way in WAYS:
                print(f"filling the kernel cache: {way} {run(way)():.1f} s", flush=True)
        figures = interleaved({way: run(way) for way in WAYS}, args.pairs)
    for way, label in WAYS.items():
        print(f"{way} ({label}): compile_s {summary(figures[way], 1)}")
    print(f"function / traced: {summary(ratios(figures['function'], figures['traced']), 2)}")


def child_compile_seconds(view: Path, way: str, work: Path, cold: bool) -> float:
    env = dict(os.environ)
    if cold:
        env["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(dir=work)
    command = [sys.executable, __file__, "--child", way, "--view", str(view)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{way} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["compile_s"]


def compile_seconds(view: Path, traced: bool) -> float:
    import torch

    from nerftune.nerf import traceable_trunc_exp
    from nerftune.nerf.config import build_config
    from nerftune.nerf.loop import NerfTrainer

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out:
        config = build_config("nerfacto", view, Path(out), 400, 0, "cpu", "tiny")
        config.pipeline.datamanager.train_num_rays_per_batch = 64
        with mock.patch.object(traceable_trunc_exp, "install", traceable_trunc_exp.install if traced else lambda: None):
            run = NerfTrainer(config, fast=True, kind="model", fast_contraction=True)
        assert run.kind == "model" and run.compile_error is None, run.compile_error
        return run.timings.compile_s


if __name__ == "__main__":
    main()
