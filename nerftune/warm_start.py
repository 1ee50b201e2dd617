"""Warm starts (`init_from`): a trial starts from another trial's weights, even on another number of frames.

A model's per-image parameters (nerfacto's appearance embedding, and its camera optimizer's pose adjustments) have a
row per training image, in nerfstudio's order of the training images. They are matched by frame: a frame both trials
train on keeps its learned row; a frame new to this trial gets the mean of the source's rows (appearance, which is
also what nerfacto renders novel views with) or zero (a pose adjustment: the recorded pose). Everything else is the
source's as it is. The mapping is written to the trial's `warm_start.json` and logged to MLflow. The trial then
trains its own `steps` with fresh optimizers.

`init_from` is a trial folder, a checkpoint folder or file (relative to the spec), or `SWEEP/TRIAL_ID` of a sweep in
the same storage folder; the source must have trained the same method on the same dataset (every trial's view lists
all frames, so the model's frame is the same and only the per-image rows differ).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerftune.data.dataset import Dataset
from nerftune.dimensions import INIT_FROM
from nerftune.errors import InputError
from nerftune.trials import RECIPE_FILE, TrialRecipe, locate, read_recipe

WARM_START_FILE = "warm_start.json"
PER_IMAGE = {  # state-dict names ending so -> how a new frame's row starts
    "embedding_appearance.embedding.weight": "mean",
    "embedding_transient.embedding.weight": "mean",
    "camera_optimizer.pose_adjustment": "zero",
}


@dataclass(frozen=True)
class Source:
    """A resolved `init_from` value."""

    value: str  # as the spec writes it
    trial_dir: Path
    checkpoint: Path
    recipe: TrialRecipe


def resolve(value: str, spec_path: Path, storage: Path) -> Source:
    """The trial and checkpoint an `init_from` value names; raises `InputError` (one line) if there is none."""
    candidates = [spec_path.parent / value, Path(value)]
    sweep, _, trial_id = value.partition("/")
    if trial_id and (storage / sweep).is_dir():
        matches = [p.parent for p in (storage / sweep).glob(f"*{trial_id}*/{RECIPE_FILE}")]
        candidates += matches[:1]
    found = next((path for path in candidates if path.exists()), None)
    if found is None:
        raise InputError(
            spec_path,
            f"space.{INIT_FROM}",
            f"{value!r} names no trial, checkpoint folder or checkpoint file",
            "give a trial folder or checkpoint (relative to the spec), or SWEEP/TRIAL_ID of a sweep in the storage "
            "folder",
        )
    try:
        trial_dir, checkpoint = locate(found)
        return Source(value, trial_dir, checkpoint, read_recipe(trial_dir))
    except InputError as error:
        raise InputError(spec_path, f"space.{INIT_FROM}", f"{value!r}: {error.problem}", error.hint) from None


def check_compatible(source: Source, spec_path: Path, dataset: Dataset, methods: list[str]) -> None:
    """The source trained the one method the trials train, on the same data: the same content (a copy elsewhere will
    do), or for a source of an older nerftune that recorded no data hash, the same folder."""
    field = f"space.{INIT_FROM}"
    name = f"trial {source.recipe.trial_id} ({source.value})"
    recorded = source.recipe.data_hash
    same_folder = Path(source.recipe.data_dir).resolve() == dataset.root.resolve()
    if recorded and recorded != dataset.data_hash and same_folder:
        raise InputError(
            spec_path,
            field,
            f"{name} trained on this sweep's data {dataset.root} before its frames changed (data hash {recorded}, "
            f"now {dataset.data_hash})",
            "warm-start from a trial trained on the data as it is now",
        )
    if not (recorded == dataset.data_hash if recorded else same_folder):
        raise InputError(
            spec_path,
            field,
            f"{name} trained on {source.recipe.data_dir}, not on this sweep's data {dataset.root}",
            "warm-start from a trial of the same dataset",
        )
    method = source.recipe.config.get("method")
    if any(m != method for m in methods):
        raise InputError(
            spec_path, field, f"{name} is a {method} model; this sweep trains {', '.join(methods)}", f"train {method}"
        )


def remap_per_image(state: dict[str, Any], source_frames: list[str], target_frames: list[str]):
    """The pipeline state with its per-image rows moved from the source's training frames to the target's (both in
    nerfstudio's order); returns (state, the mapping for `warm_start.json`)."""
    import torch

    position = {frame: row for row, frame in enumerate(source_frames)}
    new = {}
    for key, value in state.items():
        init = next((how for suffix, how in PER_IMAGE.items() if key.endswith(suffix)), None)
        if init is None or value.shape[0] != len(source_frames):
            new[key] = value
            continue
        start = value.mean(0) if init == "mean" else torch.zeros_like(value[0])
        new[key] = torch.stack([value[position[f]] if f in position else start for f in target_frames])
    shared = [f for f in target_frames if f in position]
    mapping = {
        "shared": [Path(f).name for f in shared],
        "new": [Path(f).name for f in target_frames if f not in position],
        "dropped": [Path(f).name for f in source_frames if f not in set(target_frames)],
        "new_rows": {"appearance": "mean of the source's rows", "pose_adjustment": "zero (the recorded pose)"},
    }
    return new, mapping
