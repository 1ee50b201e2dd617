"""Loading a warm start's source weights into a new trial's model (`warm_start.py` says how rows are matched)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from nerfstudio.engine.trainer import TrainerConfig

from nerftune.nerf.config import dataparser_outputs
from nerftune.nerf.loop import NerfTrainer
from nerftune.nerf.render import trained_config
from nerftune.nerf.run_state import restore_module_scalars
from nerftune.warm_start import Source, remap_per_image


def initialise_from(trainer: NerfTrainer, source: Source) -> dict:
    """Put the source's weights into `trainer`'s model, per-image rows matched by frame; returns the mapping. The
    models' own counters come along too (nerfacto's proposal annealing), so that before any new step the model
    renders as its source does; training then runs its own schedule from step 0 with fresh optimizers."""
    state = torch.load(source.checkpoint, map_location="cpu", weights_only=False)  # nerftune's own file
    with tempfile.TemporaryDirectory() as work:
        source_config, _ = trained_config(source.recipe, source.checkpoint, Path(work))
        source_frames = train_images(source_config)
    target_frames = [str(Path(name).resolve()) for name in trainer.pipeline.datamanager.train_dataset.image_filenames]
    pipeline, mapping = remap_per_image(state["pipeline"], source_frames, target_frames)
    trainer.pipeline.load_pipeline(pipeline, state["step"])
    restore_module_scalars(trainer.pipeline, state.get("module_scalars", {}))
    return {"source": source.value, "source_trial": source.recipe.trial_id, "source_step": state["step"] + 1, **mapping}


def train_images(config: TrainerConfig) -> list[str]:
    """The training images of a config's data, in nerfstudio's order (its per-image rows' order)."""
    return [str(Path(name).resolve()) for name in dataparser_outputs(config, "train").image_filenames]
