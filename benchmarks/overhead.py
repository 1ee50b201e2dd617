"""Overhead of running nerfstudio training as a nerftune trial under Ray Tune, as a ratio measured in one run.

Trains the same tiny nerfacto config for the same number of steps twice: once bare, with nerfstudio's own
`Trainer.train()` loop in this process, and once as a one-trial nerftune sweep on a local Ray cluster. Prints the
training steps/s of each and the ratio trial / bare (target: >= 0.95). Usage:

    python benchmarks/overhead.py [--steps 1000] [--cpus 2]
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

import torch


def bare_steps_per_s(data_dir: Path, out_dir: Path, steps: int) -> float:
    from nerfstudio.engine.trainer import Trainer

    from nerftune.data.dataset import load_dataset, write_view
    from nerftune.nerf import lpips
    from nerftune.nerf.config import build_config

    lpips.install()  # offline, nerfstudio's own setup would die downloading LPIPS weights

    dataset = load_dataset(data_dir)
    view = write_view(dataset, dataset.pool, out_dir / "view")  # the trial below trains on the whole pool too
    config = build_config("nerfacto", view, out_dir / "bare", steps, 0, "cpu", "tiny")
    for name in ("steps_per_save", "steps_per_eval_batch", "steps_per_eval_image", "steps_per_eval_all_images"):
        setattr(config, name, steps + 1)  # nerfstudio's loop trains only, like the timed part of a trial
    trainer = Trainer(config)
    trainer.setup()
    start = time.perf_counter()
    trainer.train()
    return steps / (time.perf_counter() - start)


def trial_steps_per_s(workdir: Path, steps: int, cpus: int) -> float:
    from nerftune.preflight import prepare
    from nerftune.sweep import run

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
    prepared = prepare(spec, workdir / "sweeps")
    table = run(prepared, address=None, resume=False)
    return float(table.steps_per_s.iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.cpus)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        trial = trial_steps_per_s(workdir, args.steps, args.cpus)  # also renders the synthetic scene
        data_dir = next((workdir / "sweeps" / "_datasets").iterdir())
        bare = bare_steps_per_s(data_dir, workdir, args.steps)
    print(f"tiny nerfacto, {args.steps} steps, {args.cpus} CPU threads")
    print(f"bare nerfstudio Trainer.train(): {bare:7.2f} steps/s")
    print(f"nerftune trial under Ray Tune:   {trial:7.2f} steps/s")
    print(f"ratio trial / bare: {trial / bare:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
