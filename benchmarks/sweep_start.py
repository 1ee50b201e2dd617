"""What a sweep of short trials costs beyond training, with Ray workers reused between trials and with a new worker
process for every trial (NERFTUNE_FRESH_WORKERS=1), as ratios measured in one run.

Runs the same sweep through the command line, as a user would: `--trials` tiny nerfacto trials of `--steps` steps,
two at a time, on the 80x60 synthetic card; alternately reused, fresh, reused, fresh, ... for `--pairs` pairs (this
machine's speed drifts, so only a pair measured back to back gives a ratio). Prints each sweep's wall seconds and
each pair's ratio reused / fresh, then the median and range, and checks that both gave the same PSNRs. Usage:

    python benchmarks/sweep_start.py [--trials 6] [--steps 30] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from timing import interleaved, ratios, summary

from nerftune.data.synthetic import SceneOptions, write_scene
from nerftune.tuner import FRESH_WORKERS

ROOT = Path(__file__).resolve().parents[1]


def spec_text(data: Path, trials: int, steps: int) -> str:
    frames = list(range(3, 3 * trials + 1, 3))
    return f"""\
name: start
data: {data}
profile: tiny
space: {{frames: {{values: {frames}}}, steps: {steps}}}
search: {{algorithm: grid, seed: 0}}
scheduler: {{type: none}}
max_concurrent_trials: 2
resources: {{cpu: 1, gpu: 0}}
eval: {{max_images: 1}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scene = SceneOptions(frames=3 * args.trials + 6, width=80, height=60)
        spec = folder / "start.yaml"
        spec.write_text(spec_text(write_scene(folder / scene.name(), scene), args.trials, args.steps))
        psnrs: dict[str, list[list[float]]] = {"reused": [], "fresh": []}

        def sweep(kind: str) -> float:
            storage = folder / f"sweeps-{kind}-{len(psnrs[kind])}"
            env = {**os.environ, FRESH_WORKERS: "1" if kind == "fresh" else "0"}
            command = [sys.executable, "-m", "nerftune.sweep", str(spec), "--storage", str(storage)]
            start = time.perf_counter()
            result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - start
            if result.returncode != 0:
                raise SystemExit(f"the {kind} sweep failed: {result.stderr[-2000:]}")
            table = pd.read_csv(storage / "start" / "results.csv").sort_values("frames")
            psnrs[kind].append(table.final_psnr.round(3).tolist())
            return elapsed

        figures = interleaved({"reused": lambda: sweep("reused"), "fresh": lambda: sweep("fresh")}, args.pairs)
    print(f"\n{args.trials} trials of {args.steps} steps, 2 at a time, wall seconds of the whole command:")
    print(f"  workers reused: {summary(figures['reused'], 1)}")
    print(f"  a new worker per trial: {summary(figures['fresh'], 1)}")
    print(f"  reused / fresh: {summary(ratios(figures['reused'], figures['fresh']))}")
    same = all(run == psnrs["fresh"][0] for run in psnrs["reused"] + psnrs["fresh"])
    print(f"  final PSNRs by frame count, the same in every sweep: {same} ({psnrs['reused'][0]})")


if __name__ == "__main__":
    main()
