"""Overhead of running nerfstudio training as a nerftune trial under Ray Tune, as ratios measured in one run.

Trains the same tiny nerfacto config for the same number of steps, alternately: bare, with nerfstudio's own
`Trainer.train()` loop in this process, then as a one-trial nerftune sweep on a local Ray cluster, and again, for
`--pairs` pairs (this machine's speed drifts, so only a pair measured back to back gives a ratio). Prints each pair's
training steps/s and ratio trial / bare, then the median and range of the ratios (target: >= 0.95). Usage:

    python benchmarks/overhead.py [--steps 400] [--pairs 3] [--cpus 2]
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
from pathlib import Path

import torch
from bare import bare_nerfstudio
from timing import interleaved, ratios, summary

from nerftune.data.synthetic import SceneOptions, write_scene
from nerftune.preflight import DATASETS_FOLDER


def bare_steps_per_s(data_dir: Path, out_dir: Path, steps: int) -> float:
    from nerftune.data.dataset import load_dataset, write_view

    dataset = load_dataset(data_dir)
    view = write_view(dataset, dataset.pool, out_dir / "view")  # the trial below trains on the whole pool too
    return bare_nerfstudio(view, out_dir / "bare", steps, "cpu", "tiny")["steps_per_s"]


def trial_steps_per_s(workdir: Path, steps: int, cpus: int) -> float:
    from nerftune.preflight import prepare
    from nerftune.sweep import run

    workdir.mkdir(parents=True)
    spec = workdir / "overhead.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            name: overhead
            data: synthetic:id-card
            profile: tiny
            space: {{frames: 1.0, steps: {steps}}}
            scheduler: {{type: none}}
            num_samples: 1
            resources: {{cpu: {cpus}, gpu: 0}}
            eval: {{max_images: 1}}
            """
        )
    )
    prepared = prepare(spec, workdir.parent / "sweeps", name=workdir.name)
    table = run(prepared)
    return float(table.steps_per_s.iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.cpus)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        options = SceneOptions()  # what the trial's `data: synthetic:id-card` renders, in the same place
        data_dir = write_scene(workdir / "sweeps" / DATASETS_FOLDER / options.name(), options)
        runs = iter(range(10**6))
        figures = interleaved(
            {
                "bare": lambda: bare_steps_per_s(data_dir, workdir / f"bare{next(runs)}", args.steps),
                "trial": lambda: trial_steps_per_s(workdir / f"trial{next(runs)}", args.steps, args.cpus),
            },
            args.pairs,
        )
    pairs = ratios(figures["trial"], figures["bare"])
    print(f"\ntiny nerfacto, {args.steps} steps, {args.cpus} CPU threads, {args.pairs} pairs (bare, trial, ...)")
    for index, (bare, trial, ratio) in enumerate(zip(figures["bare"], figures["trial"], pairs), 1):
        print(f"pair {index}: bare {bare:6.2f} steps/s, trial {trial:6.2f} steps/s, ratio {ratio:.3f}")
    print(f"ratio trial / bare: median {summary(pairs)}  (target >= 0.95)")


if __name__ == "__main__":
    main()
