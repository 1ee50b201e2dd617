"""Rendering a trained trial along camera paths, with the document crop, in nerfstudio's normalised frame.

nerfstudio trains in a frame of its own: its dataparser rotates, centres and scales the dataset's poses (the same
way for every trial of a sweep, since every view lists all frames). Paths and crops are written in the dataset's
frame, so they are moved into the model's frame here with the trial's own dataparser transform.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from nerfstudio.cameras.camera_paths import get_path_from_json
from nerfstudio.data.scene_box import OrientedBox
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.model_components import renderers

from nerftune.data.poi import Crop
from nerftune.nerf.config import build_config
from nerftune.nerf.device import gpu_count
from nerftune.nerf.fast_path import compiles_scoring, wants_fast_contraction
from nerftune.nerf.loop import NerfTrainer
from nerftune.nerf.on_device import keep_on_device
from nerftune.dimensions import total_steps
from nerftune.finetune import SEGMENTATION_VIEW
from nerftune.outcomes import FINETUNE
from nerftune.trials import TrialRecipe, checkpoint_stage

CROP_BOX_SIZE = 100.0  # the crop is a half-space; as nerfstudio's oriented box, a box this large (model units)


def load_trained(
    recipe: TrialRecipe, checkpoint: Path, work_dir: Path, rays: int = 0, scores: bool = True
) -> NerfTrainer:
    """The trial's model with its checkpoint's weights, built from the trial's own recipe and dataset view; `rays`:
    how many it is loaded to render (on the CPU, enough of them are worth compiling its hash grid for); `scores`:
    whether it will score test images (renders and exports do not: no LPIPS, whose weights it may have to fetch)."""
    nerf_config, finetuned = trained_config(recipe, checkpoint, work_dir)
    device = nerf_config.machine.device_type
    compiled = compiles_scoring("auto", nerf_config, device, rays)
    contraction = wants_fast_contraction("auto", device)
    trainer = NerfTrainer(
        nerf_config, compiled_scoring=compiled, fast_contraction=contraction, colour_only=finetuned, lpips=scores
    )
    trainer.load(checkpoint)
    if device == "cuda":  # the same images, and no wait for nerfstudio's CPU constants at every grid call (on_device)
        keep_on_device(trainer.pipeline.model, trainer.pipeline.model.device)
    return trainer


def trained_config(recipe: TrialRecipe, checkpoint: Path, output_dir: Path) -> tuple[TrainerConfig, bool]:
    """The config the checkpoint was trained with (on the segmentation view for a checkpoint of the fine-tuning
    stage), and whether it was."""
    config = recipe.config
    device = "cuda" if gpu_count() else "cpu"
    finetuned = checkpoint_stage(checkpoint) == FINETUNE
    view = Path(recipe.view_dir).parent / SEGMENTATION_VIEW if finetuned else Path(recipe.view_dir)
    steps, seed = total_steps(config), int(config["seed"])
    nerf_config = build_config(
        config["method"], view, output_dir, steps, seed, device, recipe.profile, recipe.overrides
    )
    return nerf_config, finetuned


def dataset_to_model(trainer: NerfTrainer) -> tuple[np.ndarray, float]:
    """nerfstudio's dataparser transform (3x4) and scale of this trial: model = scale * (T @ dataset)."""
    outputs = trainer.pipeline.datamanager.train_dataparser_outputs
    return outputs.dataparser_transform.cpu().numpy().astype(float), float(outputs.dataparser_scale)


def poses_to_model(poses: np.ndarray, transform: np.ndarray, scale: float) -> np.ndarray:
    """Camera-to-world matrices (N, 4, 4) from the dataset's frame to the model's, as nerfstudio moves its cameras."""
    moved = np.einsum("ij,njk->nik", np.vstack([transform, [0, 0, 0, 1]]), poses)
    moved[:, :3, 3] *= scale
    return moved


def model_to_dataset(points: np.ndarray, transform: np.ndarray, scale: float) -> np.ndarray:
    """Points (N, 3) from the model's frame back to the dataset's: model = scale * (R @ dataset + t)."""
    return (np.asarray(points) / scale - transform[:, 3]) @ transform[:, :3]


def recorded_crop_box(trainer: NerfTrainer, view_dir: Path) -> OrientedBox | None:
    """The document crop that `nerftune prepare` or the synthetic scene recorded with the data, in the model's
    frame; None where none was recorded."""
    recorded = json.loads((Path(view_dir) / "transforms.json").read_text()).get("nerftune", {}).get("crop")
    return crop_box(Crop.from_json(recorded), *dataset_to_model(trainer)) if recorded else None


def crop_box(crop: Crop, transform: np.ndarray, scale: float) -> OrientedBox:
    """The half-space crop as an oriented box whose top face is the crop's plane, in the model's frame."""
    normal = transform[:, :3] @ crop.normal
    point = scale * (transform[:, :3] @ crop.point + transform[:, 3])
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    rotation = np.stack([u, np.cross(normal, u), normal], axis=1)
    centre = point + (scale * crop.margin - CROP_BOX_SIZE / 2) * normal
    as_tensor = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    return OrientedBox(as_tensor(rotation), as_tensor(centre), as_tensor([CROP_BOX_SIZE] * 3))


@torch.no_grad()
def render_path(
    trainer: NerfTrainer, camera_path: dict, crop: OrientedBox | None, on_view: Callable[[int, int], None] | None = None
) -> tuple[list[np.ndarray], list[float]]:
    """Render every camera of a nerfstudio camera-path dict (model frame): uint8 images and seconds per view;
    `on_view(done, total)` after each."""
    cameras = get_path_from_json(camera_path).to(trainer.pipeline.device)
    model = trainer.pipeline.model
    model.eval()
    images, seconds = [], []
    black = torch.zeros(3, device=trainer.pipeline.device)
    for index in range(len(cameras)):
        start = time.perf_counter()
        if crop is None:
            outputs = model.get_outputs_for_camera(cameras[index : index + 1])
        else:
            with renderers.background_color_override_context(black):  # what the crop removes renders black
                outputs = model.get_outputs_for_camera(cameras[index : index + 1], obb_box=crop)
        rgb = outputs.get("rgb", outputs.get("rgb_fine"))
        images.append((rgb.clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8))
        seconds.append(time.perf_counter() - start)
        if on_view:
            on_view(index + 1, len(cameras))
    model.train()
    return images, seconds
