"""A resumed trial whose recorded checkpoint is gone or damaged continues from the newest intact one in its folder.

Ray deletes a trial's older checkpoints (beyond `checkpoints.keep`) as soon as a new one registers, and saves the
sweep's state, which names each trial's latest checkpoint, a moment later and in the background. A sweep killed in
between names a deleted checkpoint, and Ray's restore then fails the trial ("Could not recover from checkpoint").
This callback mends each unfinished trial's record before Ray restores it: it points the trial at the newest intact
checkpoint in its folder, or, where none is left, lets it start again from step 0.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from ray.train._internal.session import _TrainingResult
from ray.tune import Callback, Checkpoint
from ray.tune.experiment import Trial

from nerftune.quiet import terminal
from nerftune.trials import CHECKPOINT_FILE, MILESTONE_FILE

CHECKPOINT_PREFIX = "checkpoint_"  # Ray's checkpoint folders: checkpoint_000000, checkpoint_000001, ...


def intact(folder: Path) -> bool:
    """Whether a checkpoint folder holds its milestone and a whole model file (torch saves a zip: every CRC holds)."""
    try:
        json.loads((folder / MILESTONE_FILE).read_text())
        with zipfile.ZipFile(folder / CHECKPOINT_FILE) as model:
            return model.testzip() is None
    except (OSError, ValueError, zipfile.BadZipFile):  # missing, unreadable, truncated; JSONDecodeError is a ValueError
        return False


def newest_intact(trial_dir: Path) -> Path | None:
    folders = sorted(trial_dir.glob(f"{CHECKPOINT_PREFIX}*"), key=_index, reverse=True)
    return next((folder for folder in folders if intact(folder)), None)


def _index(folder: Path) -> int:
    return int(folder.name.removeprefix(CHECKPOINT_PREFIX))


class CheckpointRepair(Callback):
    """Ray Tune callback: at the first step of a (restored) run, mends each unfinished trial's checkpoint record."""

    def setup(self, **info: Any) -> None:
        self.checked = False  # once: every restored trial is there at the first step, and only those can need it

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self.checked:
            return
        self.checked = True
        for trial in trials:
            if trial.status != Trial.TERMINATED:
                _repair(trial)


def _repair(trial: Trial) -> None:
    # Ray's checkpoint record is private (checked against Ray 2.60): the list it rotates and the latest entry
    manager = trial.run_metadata.checkpoint_manager
    recorded = manager.latest_checkpoint_result
    named = Path(recorded.checkpoint.path) if recorded else None
    if named is None or intact(named):
        return
    problem = "is damaged" if named.exists() else "is gone"
    fallback = newest_intact(Path(trial.storage.trial_fs_path))  # the trial folder where it is now
    if fallback is None:
        manager._checkpoint_results, manager._latest_checkpoint_result = [], None
        trial.run_metadata.last_result = {}
        terminal().warn(
            f"trial {trial.trial_id}: its checkpoint {named.name} {problem} and no other is intact: "
            "it starts again from step 0"
        )
    else:
        index, milestone = _index(fallback), json.loads((fallback / MILESTONE_FILE).read_text())
        # every report of a trial carries a checkpoint, so the report a checkpoint came with is its index + 1
        metrics = {**milestone, "training_iteration": index + 1}
        result = _TrainingResult(checkpoint=Checkpoint.from_directory(str(fallback)), metrics=metrics)
        # older checkpoints still there stay on the record, so that Ray deletes them in turn
        older = [r for r in manager._checkpoint_results if _older_and_there(Path(r.checkpoint.path), index)]
        manager._checkpoint_results = [*older, result]
        manager._latest_checkpoint_result = result
        trial.storage.current_checkpoint_index = index  # the next checkpoint folder follows this one
        trial.run_metadata.last_result = metrics
        terminal().warn(
            f"trial {trial.trial_id}: its checkpoint {named.name} {problem}: it continues from "
            f"{fallback.name} (step {milestone.get('step')})"
        )
    trial.invalidate_json_state()
    trial.run_metadata.invalidate_cache()


def _older_and_there(folder: Path, index: int) -> bool:
    return _index(folder) < index and folder.is_dir()
