"""How long `nerftune report` takes on a large study: a generated sweep folder of 500 trials (50 frame-count and
learning-rate configurations x 10 seed replicates, 20 milestones each), in the exact layout a sweep writes.

The issue's floor is 30 seconds on 2 cores. Builds the report `--repeats` times in fresh processes (imports
included, as a user runs it) and prints the median and range, and that median as a share of the floor. Usage:

    python benchmarks/report.py [--trials 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from timing import interleaved, summary

ROOT = Path(__file__).resolve().parents[1]
FLOOR_S = 30.0
SPEC = """\
name: big
data: synthetic:id-card
profile: tiny
space:
  frames: {{values: {frames}}}
  optimizers.fields.optimizer.lr: {{values: {rates}}}
  seed: {{values: {seeds}}}
  steps: 2000
replicates: seed
stratify: frames
search: {{algorithm: grid}}
eval: {{every: 100, max_images: 2}}
"""


def write_sweep(folder: Path, trials: int) -> None:
    """A finished sweep's folder: state file, results.csv-free trial folders with recipe and result.json."""
    seeds, frames, rates = list(range(10)), [6, 12, 18, 24, 30, 36, 42, 48, 54, 60], [1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
    text = SPEC.format(frames=frames, rates=rates, seeds=seeds)
    folder.mkdir(parents=True)
    (folder / "nerftune-sweep.json").write_text(json.dumps({"spec_text": text, "spec_path": "big.yaml"}))
    generator = np.random.default_rng(0)
    configurations = [(f, r) for f in frames for r in rates]
    for index in range(trials):
        configuration, seed = divmod(index, len(seeds))
        frame_count, rate = configurations[configuration % len(configurations)]
        trial_id = f"t{index:05d}"
        trial = folder / f"train_trial_{trial_id}"
        trial.mkdir()
        config = {
            "frames": frame_count,
            "seed": seed,
            "method": "nerfacto",
            "steps": 2000,
            "configuration": configuration,
            "optimizers.fields.optimizer.lr": rate,
        }
        recipe = {
            "trial_id": trial_id,
            "config": config,
            "profile": "tiny",
            "data_dir": "x",
            "test_every": 8,
            "view_dir": "x",
        }
        (trial / "trial.json").write_text(json.dumps(recipe))
        ceiling = 18 + 6 * np.log(frame_count / 6) - 3 * abs(np.log10(rate) + 2) + generator.normal(0, 1)
        lines = []
        for step in range(100, 2001, 100):
            psnr = ceiling * (1 - np.exp(-step / 400)) + generator.normal(0, 0.2)
            lines.append(
                json.dumps(
                    {
                        "step": step,
                        "target_steps": 2000,
                        "psnr": psnr,
                        "ssim": psnr / 40,
                        "lpips": None,
                        "train_s": step / 20,
                        "eval_s": step / 400,
                        "setup_s": 3.0,
                        "wall_s": step / 18,
                        "steps_per_s": 20.0,
                        "rays_per_s": 5120.0,
                        "test_images": 13 if step == 2000 else 2,
                        "full_test": step == 2000,
                        "frames_used": frame_count,
                        "device": "cuda",
                        "trial_id": trial_id,
                    }
                )
            )
        (trial / "result.json").write_text("\n".join(lines) + "\n")


def seconds(folder: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nerftune.cli", "report", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "big"
        write_sweep(folder, args.trials)
        figures = interleaved({"report": lambda: seconds(folder)}, args.repeats)["report"]
        pages = len(list((folder / "report").glob("*.png")))
    median = statistics.median(figures)
    print(f"nerftune report, {args.trials} trials x 20 milestones ({pages} figures): {summary(figures, 2)} s")
    print(f"median as a share of the {FLOOR_S:.0f} s floor: {median / FLOOR_S:.2f}")


if __name__ == "__main__":
    main()
