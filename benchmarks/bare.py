"""nerfstudio on its own, as `ns-train` trains: the baseline the other benchmarks divide by."""

from __future__ import annotations

import time
from pathlib import Path

import torch


def bare_nerfstudio(view: Path, out_dir: Path, steps: int, device: str, profile: str) -> dict[str, float]:
    """nerfstudio's own `Trainer.setup()` and `Trainer.train()` on a dataset view, with nerftune's config for the
    same method and profile; steps/s over the whole `train()` (first steps included, as a trial counts them) and
    peak GPU memory. Its periodic evaluation and saving are pushed past the end: a trial's steps/s counts training
    only."""
    from nerfstudio.engine.trainer import Trainer

    from nerftune.nerf import lpips
    from nerftune.nerf.config import build_config
    from nerftune.nerf.device import synchronize

    lpips.install()  # offline, nerfstudio's own setup would die downloading LPIPS weights
    config = build_config("nerfacto", view, out_dir, steps, 0, device, profile)
    for name in ("steps_per_save", "steps_per_eval_batch", "steps_per_eval_image", "steps_per_eval_all_images"):
        setattr(config, name, steps + 1)
    config.viewer.quit_on_train_completion = True  # no viewer to tell that training ended
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(config)
    trainer.setup()
    synchronize(device)
    start = time.perf_counter()
    trainer.train()
    synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0.0
    return {"steps_per_s": steps / seconds, "peak_mb": peak}
