"""One trial on a GPU without Ray: nerftune's training loop on CUDA, tiny and default nerfacto, in one run.

Checks what a CPU machine cannot: the CUDA device path (mixed precision, peak memory), checkpoints written on the
GPU loading back, and the steps/s of nerfacto's default config through nerftune's loop. Usage:

    python benchmarks/gpu_trial.py [--steps 300] [--frames 60] [--width 320] [--height 240]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from nerftune.data.dataset import load_dataset, write_view
from nerftune.data.synthetic import SceneOptions, write_scene
from nerftune.machine import gpu_names
from nerftune.nerf.config import build_config
from nerftune.nerf.device import peak_memory_mb
from nerftune.nerf.loop import NerfTrainer


def run_profile(view: Path, out: Path, profile: str, steps: int) -> dict[str, float]:
    torch.cuda.reset_peak_memory_stats()
    trainer = NerfTrainer(build_config("nerfacto", view, out / profile, steps, 0, "cuda", profile))
    trainer.train(20)  # warm-up: first steps allocate and pick kernels
    torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.train(steps)
    torch.cuda.synchronize()
    steps_per_s = (steps - 20) / (time.perf_counter() - start)
    evaluation = trainer.evaluate()
    checkpoint = out / f"{profile}.ckpt"
    trainer.save(checkpoint)
    resumed = NerfTrainer(build_config("nerfacto", view, out / f"{profile}-resumed", steps, 0, "cuda", profile))
    resumed.load(checkpoint)
    assert resumed.step == steps
    again = resumed.evaluate()
    return {
        "steps_per_s": steps_per_s,
        "peak_gpu_mb": peak_memory_mb() or 0.0,
        "psnr": evaluation.metrics["psnr"] or float("nan"),
        "psnr_after_reload": again.metrics["psnr"] or float("nan"),
        "render_fps": evaluation.fps,
        "mixed_precision": float(trainer.config.mixed_precision),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    args = parser.parse_args()
    assert torch.cuda.is_available(), "this check needs a CUDA GPU"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        scene = write_scene(out / "scene", SceneOptions(frames=args.frames, width=args.width, height=args.height))
        dataset = load_dataset(scene)
        view = write_view(dataset, dataset.pool, out / "view")
        print(
            f"GPU: {', '.join(gpu_names())}; torch {torch.__version__}; {len(dataset.pool)} training frames, "
            f"{len(dataset.test_indices)} test frames at {args.width}x{args.height}; {args.steps} steps"
        )
        for profile in ("tiny", "default"):
            result = run_profile(view, out, profile, args.steps)
            print(f"{profile:8s} " + "  ".join(f"{k} {v:.2f}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
