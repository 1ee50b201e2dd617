"""A sweep's trial folders on disk: each trial's recipe, its reported milestones and its checkpoints.

A trial writes `trial.json` (its configuration, the sweep's profile and data, and its dataset view) when it starts,
so that anything that loads its checkpoints later (render, eval) rebuilds exactly the model it trained: a checkpoint
belongs to its trial's dataset view. Reading these needs no Ray.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from nerftune.errors import InputError
from nerftune.dimensions import is_nerfstudio_setting
from nerftune.spec import SCENE

RECIPE_FILE = "trial.json"
CHECKPOINT_FILE = "trial.ckpt"
MILESTONE_FILE = "milestone.json"  # the metrics reported with a checkpoint, beside it
VIEW_FOLDER = "dataset"  # the trial's dataset view, in its folder
INTERRUPTED_FOLDER = "interrupted"  # trials that an interrupted run started after its last saved state
ROUND_FOLDER = "round-{}"  # the trials a grown study added (`growth.py`), each growth a Ray Tune run of its own
STANDARD_DIMENSIONS = ("frames", "seed", "method", "steps", SCENE)


@dataclass(frozen=True)
class TrialRecipe:
    trial_id: str
    config: dict[str, Any]  # the searched and fixed values: frames, seed, method, steps, dotted overrides
    profile: str
    data_dir: str
    test_every: int
    view_dir: str  # the trial's dataset view (all frames, its training subset as train_filenames)
    data_hash: str = ""  # the data's content fingerprint when the trial ran (empty in trials of older versions)

    @property
    def overrides(self) -> dict[str, Any]:
        """The nerfstudio settings among the values (dotted paths, trainer settings)."""
        return {k: v for k, v in self.config.items() if is_nerfstudio_setting(k)}


def write_recipe(trial_dir: Path, recipe: TrialRecipe) -> None:
    (trial_dir / RECIPE_FILE).write_text(json.dumps(asdict(recipe), indent=2))


def read_recipe(trial_dir: Path) -> TrialRecipe:
    path = trial_dir / RECIPE_FILE
    try:
        recipe = TrialRecipe(**json.loads(path.read_text()))
        # the view is read where the trial folder is now: Ray writes it in its session folder, then syncs it here
        view = trial_dir.resolve() / VIEW_FOLDER
        return replace(recipe, view_dir=str(view)) if view.is_dir() else recipe
    except FileNotFoundError:
        raise InputError(
            path, "", "missing", "give the folder of a trial that nerftune ran (it writes trial.json)"
        ) from None
    except (json.JSONDecodeError, TypeError) as error:
        raise InputError(path, "", f"unreadable ({error})", "the trial folder is damaged") from None


def locate(path: Path) -> tuple[Path, Path]:
    """(trial folder, checkpoint file) for a trial folder (its latest checkpoint), a checkpoint folder or file."""
    path = Path(path)
    if path.is_file():
        return path.parent.parent, path
    if (path / CHECKPOINT_FILE).is_file():
        return path.parent, path / CHECKPOINT_FILE
    if (path / RECIPE_FILE).is_file():
        saved = [m["checkpoint"] for m in milestones(path) if m["checkpoint"]]
        if not saved:
            raise InputError(path, "", "has no checkpoint left", "raise `checkpoints.keep` in the spec and rerun")
        return path, Path(saved[-1])
    raise InputError(path, "", "is not a trial folder, checkpoint folder or trial.ckpt", "see `nerftune eval` for them")


def milestones(trial_dir: Path) -> list[dict[str, Any]]:
    """The trial's reports in step order (Ray Tune's result.json, one per step), each with `checkpoint`: its file
    if it still exists."""
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    rows: dict[Any, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        checkpoint = trial_dir.resolve() / str(row.get("checkpoint_dir_name")) / CHECKPOINT_FILE
        row["checkpoint"] = str(checkpoint) if row.get("checkpoint_dir_name") and checkpoint.is_file() else None
        rows[row.get("step")] = row  # a resumed trial reports its restored milestone again: the later row stands
    return list(rows.values())


def checkpoint_stage(checkpoint: Path) -> str | None:
    """The stage a checkpoint was saved in (`stage` of the metrics reported with it): None without a `finetune`."""
    reported = Path(checkpoint).parent / MILESTONE_FILE
    return json.loads(reported.read_text()).get("stage") if reported.is_file() else None


def trial_folders(sweep_dir: Path) -> list[Path]:
    """The sweep's trial folders that nerftune ran, in trial order."""
    if not sweep_dir.is_dir():
        raise InputError(sweep_dir, "SWEEP_DIR", "is not a folder", "give the sweep's folder, e.g. sweeps/demo")
    folders = [p.parent for p in trial_files(sweep_dir, RECIPE_FILE)]
    if not folders:
        raise InputError(sweep_dir, "SWEEP_DIR", "holds no nerftune trials", "give the folder a sweep wrote")
    return sorted(folders, key=lambda p: read_recipe(p).trial_id)


def trial_files(sweep_dir: Path, name: str) -> list[Path]:
    """The file `name` of each trial folder of the sweep: those of its first run, and those of the rounds that grew
    it since (`round-2/`, ...)."""
    rounds = ROUND_FOLDER.format("*")
    return sorted([*Path(sweep_dir).glob(f"*/{name}"), *Path(sweep_dir).glob(f"{rounds}/*/{name}")])


def set_aside_unrecorded(sweep_dir: Path, recorded: set[str]) -> list[Path]:
    """Move the folders of trials that Ray Tune has no record of (`recorded`: its trials' folder names) into
    `sweep_dir/interrupted/`; returns where they went.

    A trial writes into its folder as it starts, but Tune saves the sweep's state now and then: a run killed in
    between leaves folders of trials that its resumed run never knew, and starts their configurations again as new
    trials. Set aside, they stay out of the results, the report and the warm-start sources, and nothing is lost."""
    moved = []
    for folder in sorted(p.parent for p in sweep_dir.glob(f"*/{RECIPE_FILE}")):
        if folder.name not in recorded:
            target = sweep_dir / INTERRUPTED_FOLDER / folder.name
            target.parent.mkdir(exist_ok=True)
            shutil.move(folder, target)
            moved.append(target)
    return moved
