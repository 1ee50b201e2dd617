"""The fine-tuning stage (spec `finetune`): after its RGB steps, a trial goes on training its own model on
segmentation images (the document cut out, the rest black) with its geometry frozen: colour adapts, density stays.

nerfacto's geometry is its proposal networks, its density field (`field.mlp_base`: the hash grid and the density
MLP) and the camera optimizer's pose adjustments; its colour is `field.mlp_head` and the appearance embedding. Only
those two train. The model's own training callbacks (the proposal sampler's annealing and update schedule) are
skipped too, so the samples along each ray, and with them the depth renders, stay exactly as they were. Fine-tuning
starts fresh optimizers: the RGB stage's learning rates have decayed too far to adapt colour.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from nerftune.data.dataset import Dataset, mask_of, write_view
from nerftune.outcomes import METRICS

COLOUR_MODULES = ("field.mlp_head.", "field.embedding_appearance.")  # nerfacto's; `methods.colour_only` says which
SEGMENTATION_VIEW = "dataset_segmentation"  # the fine-tuning stage's dataset view, in the trial folder
SEGMENTATION_IMAGES = "segmentation"  # the images it makes from masks, in the trial folder


def freeze_geometry(model: torch.nn.Module) -> int:
    """Leave only the colour modules trainable; returns how many parameter values still train."""
    trainable = 0
    for name, parameter in model.named_parameters():
        colour = name.startswith(COLOUR_MODULES)
        parameter.requires_grad_(colour)
        trainable += parameter.numel() if colour else 0
    if not trainable:
        raise RuntimeError(f"{type(model).__name__} has none of {', '.join(COLOUR_MODULES)}: no colour to fine-tune")
    return trainable


def geometry_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every frozen parameter (what fine-tuning must leave bit-identical)."""
    return {
        name: parameter.detach().cpu().clone()
        for name, parameter in model.named_parameters()
        if not name.startswith(COLOUR_MODULES)
    }


def segmentation_view(dataset: Dataset, train_indices: list[int], trial_dir: Path) -> Path:
    """The fine-tuning stage's dataset view: the same frames and splits with segmentation images (the frame's
    `segmentation_path` where the data names one, else its image with its mask applied, written into the trial
    folder). Every frame moves, so that nerfstudio, which sorts frames by file name before it orients and scales
    the poses, sees them in the same order and puts the model in exactly the same frame."""
    view_dir = trial_dir / SEGMENTATION_VIEW
    out = trial_dir / SEGMENTATION_IMAGES
    out.mkdir(parents=True, exist_ok=True)
    changes = {}
    for index, frame in enumerate(dataset.frames):
        if frame.get("segmentation_path"):
            changes[frame["file_path"]] = {"file_path": str((dataset.root / frame["segmentation_path"]).resolve())}
            continue
        path = out / f"{index:05d}_{Path(frame['file_path']).stem}.png"
        if not path.is_file():
            _apply_mask(dataset.root / frame["file_path"], dataset.root / mask_of(frame), path)
        # relative to the view, which nerfstudio reads paths against: the trial folder moves (Ray syncs it)
        changes[frame["file_path"]] = {"file_path": os.path.relpath(path, view_dir)}
    return write_view(dataset, train_indices, view_dir, changes, masks=False)


def _apply_mask(image_path: Path, mask_path: Path, out: Path) -> None:
    with Image.open(image_path) as image, Image.open(mask_path) as mask:
        rgb = np.asarray(image.convert("RGB"))
        keep = np.asarray(mask.convert("L").resize(image.size, Image.NEAREST)) >= 128
    Image.fromarray(rgb * keep[..., None].astype(np.uint8)).save(out)


def by_segmentation_image(dataset: Dataset, view_dir: Path, by_image: dict[str, Any]) -> dict[str, Any]:
    """What is kept per test view (document regions, text checks: keyed by the image each view scores, its
    resolved path) keyed by the view's segmentation images instead."""
    frames = json.loads((Path(view_dir) / "transforms.json").read_text())["frames"]
    moved = {
        str((dataset.root / original["file_path"]).resolve()): str((Path(view_dir) / frame["file_path"]).resolve())
        for original, frame in zip(dataset.frames, frames)
    }
    return {moved[path]: value for path, value in by_image.items() if path in moved}


def stage_metrics(metrics: dict, stage: str) -> dict[str, float | None]:
    """The image metrics of one stage under its own names (`rgb_psnr`, `finetune_psnr`, ...)."""
    return {f"{stage}_{m}": metrics.get(m) for m in METRICS}
