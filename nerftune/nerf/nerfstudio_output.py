"""A trial's checkpoint as a nerfstudio output folder, the layout `ns-train` writes, so that nerfstudio's own tools
(`ns-viewer`, `ns-render`, `ns-eval`, `ns-export`) load it unchanged:

    OUT/<trial id>/<method>/step-<N>/config.yml
    OUT/<trial id>/<method>/step-<N>/nerfstudio_models/step-<N>.ckpt
    OUT/<trial id>/<method>/step-<N>/test_views.json        (the test cameras, for `ns-render camera-path`)

`config.yml` is the trial's resolved config (its profile and overrides, its dataset view as the data, the data
manager the method registers); the checkpoint keeps only what nerfstudio saves itself, in types that torch's safe
loading accepts (nerftune's extras, the random generators' states, would need unsafe loading, which nerfstudio's
tools do not do).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from nerfstudio.engine.trainer import TrainerConfig

from nerftune.errors import InputError
from nerftune.nerf.config import as_registered, config_yaml, dataparser_outputs
from nerftune.nerf.render import trained_config
from nerftune.trials import TrialRecipe

NERFSTUDIO_KEYS = ("step", "pipeline", "optimizers", "schedulers", "scalers")
TEST_VIEWS = "test_views.json"  # the test cameras as a camera path, beside config.yml


def write_nerfstudio_output(recipe: TrialRecipe, checkpoint: Path, out: Path, overwrite: bool = False) -> Path:
    """Write the folder under `out`; returns its config.yml."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)  # nerftune's own file
    step = int(state["step"])
    config, _ = trained_config(recipe, checkpoint, out.resolve())
    config = as_registered(config)
    config.experiment_name = recipe.trial_id
    config.timestamp = f"step-{step:09d}"
    folder = config.get_base_dir()
    if folder.exists() and not overwrite:
        raise InputError(folder, "--out", "exists already", "give another --out, or add --overwrite")
    config.get_checkpoint_dir().mkdir(parents=True, exist_ok=True)
    (folder / "config.yml").write_text(config_yaml(config))
    (folder / TEST_VIEWS).write_text(json.dumps(test_views_path(config)))
    saved = {k: _safe(state[k]) for k in NERFSTUDIO_KEYS if k in state}
    torch.save(saved, config.get_checkpoint_dir() / f"step-{step:09d}.ckpt")
    return folder / "config.yml"


def test_views_path(config: TrainerConfig) -> dict:
    """The test cameras as a camera path for `ns-render camera-path`, in the model's frame (nerfstudio's tools take
    camera paths in the frame its dataparser moved the poses into, as its viewer writes them)."""
    cameras = dataparser_outputs(config, "test").cameras
    path = []
    for index in range(len(cameras)):
        camera_to_world = np.vstack([cameras.camera_to_worlds[index].numpy(), [0, 0, 0, 1]])
        height, width, fy = (float(getattr(cameras, key)[index]) for key in ("height", "width", "fy"))
        fov = math.degrees(2 * math.atan(height / (2 * fy)))  # vertical, as three.js cameras measure it
        path.append({"camera_to_world": camera_to_world.flatten().tolist(), "fov": fov, "aspect": width / height})
    height, width = int(cameras.height[0]), int(cameras.width[0])
    return {
        "render_height": height,
        "render_width": width,
        "camera_type": "perspective",
        "seconds": len(path),
        "camera_path": path,
    }


def _safe(value: Any) -> Any:
    """Numpy scalars as Python numbers: nerfstudio's schedulers leave numpy learning rates in the optimizer state,
    which torch's safe loading (its default since 2.6, and nerfstudio's tools use it) refuses."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_safe(v) for v in value)
    return value
