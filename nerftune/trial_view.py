"""A trial's dataset view: which frames it trains on, with which poses and masks (the study dimensions `poses`,
`masks` and `mask_error`), and what it records of them. The view itself is `data.dataset.write_view`'s."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerftune.data.dataset import Dataset, write_view
from nerftune.data.subset_poses import solve
from nerftune.mask_error import MaskError, chosen_frames, nearest_training_frames, write_corrupted
from nerftune.dimensions import FRAME_SUBSET, MASK_ERROR, MASKS, POSES
from nerftune.trials import VIEW_FOLDER


def trial_view(config: dict[str, Any], dataset: Dataset, trial_dir: Path):
    """Write the trial's view into `trial_dir/dataset`; returns (training frame indices, the view's folder, what to
    record of the poses and masks, the mask-error split or None)."""
    train_indices, changes, provenance = _poses(config, dataset, trial_dir)
    error = MaskError.from_value(config.get(MASK_ERROR))
    near_error = _corrupt_masks(error, dataset, train_indices, trial_dir, changes) if error else None
    if near_error:
        provenance["mask_error_frames"] = near_error.frames
    masks = True if error else config.get(MASKS)  # corrupted masks are trained with
    view = write_view(dataset, train_indices, trial_dir / VIEW_FOLDER, changes, masks)
    return train_indices, view, provenance, near_error


@dataclass(frozen=True)
class NearError:
    frames: str  # the corrupted frames' names, for results.csv and MLflow
    views: set[str]  # the test views (resolved image paths) whose nearest training frame is a corrupted one


def _corrupt_masks(
    error: MaskError, dataset: Dataset, train_indices: list[int], trial_dir: Path, changes: dict
) -> NearError:
    """Write the corrupted masks (into `changes`, for the view) and find the test views near them."""
    train_names = [dataset.frames[i]["file_path"] for i in train_indices]
    names = chosen_frames(train_names, error.frames)
    for name, path in write_corrupted(dataset, names, error, trial_dir / MASK_ERROR).items():
        # relative to the view, which nerfstudio reads paths against: the trial folder moves (Ray syncs it)
        changes.setdefault(name, {})["mask_path"] = os.path.relpath(path, trial_dir / VIEW_FOLDER)
    nearest = nearest_training_frames(dataset, train_names)
    views = {str((dataset.root / test).resolve()) for test, train in nearest.items() if train in names}
    return NearError(", ".join(Path(name).name for name in names), views)


def _poses(config: dict[str, Any], dataset: Dataset, trial_dir: Path) -> tuple[list[int], dict, dict]:
    """The training frames, the view's changes and the record of where the poses came from (`poses: per_subset`:
    SfM on the training frames alone, aligned to the global poses)."""
    train_indices = dataset.train_indices(config["frames"], int(config.get(FRAME_SUBSET, 0)))
    if config.get(POSES, "global") == "global":
        return train_indices, {}, {}
    subset = solve(dataset, train_indices, trial_dir / "sfm")
    if len(subset.registered) < 2:
        raise RuntimeError(
            f"poses: per_subset: SfM registered {len(subset.registered)} of {len(train_indices)} training frames "
            "(at least 2 are needed to train): this frame count is too few for SfM on this capture"
        )
    registered = set(subset.registered)
    kept = [i for i in train_indices if dataset.frames[i]["file_path"] in registered]
    return kept, subset.view_changes(), subset.record()
