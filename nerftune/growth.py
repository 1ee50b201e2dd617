"""A study grows: replicate values added to a finished study's spec run only the trials they add.

The report's advice where a comparison is not yet sure ("about 13 replicates a level would settle it") has one answer,
more seeds. Adding values to the replicate dimension of a finished study's spec (`seed: {values: [0, 1]}` to
`[0, 1, 2, 3]`) and rerunning the same command keeps every trial that ran and trains the added replicates of each
configuration that completed its steps. A configuration that the scheduler stopped keeps its replicates and its
verdict: new replicates of it would be stopped at the same rung, or would reopen a decision ASHA took on the others.
The new trials run as a Ray Tune run of their own, a round, in `SWEEP/round-N/`, each under its configuration's
number, so that the results, the report and MLflow count them with the others. Deciding needs no Ray.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nerftune.errors import InputError, some_of
from nerftune.outcomes import StopReason
from nerftune.results import RESULTS_FILE
from nerftune.spec import CONFIGURATION, SweepSpec, parse_spec, value_text
from nerftune.trials import ROUND_FOLDER, read_recipe, trial_folders


@dataclass(frozen=True)
class Round:
    """A Ray Tune run of the trials that a growth added, in the sweep's folder `round-N/`."""

    number: int  # 2 for a sweep's first growth: its first run is round 1
    trials: list[dict[str, Any]]  # each new trial: its configuration's values and number, and the replicate value

    def folder(self, sweep_dir: Path) -> Path:
        return Path(sweep_dir) / ROUND_FOLDER.format(self.number)


@dataclass(frozen=True)
class Growth:
    """What rerunning a finished study with added replicate values will train."""

    round: Round
    dimension: str
    added: list[Any]
    grown: int  # configurations that completed their steps: each gets the added replicates
    kept: int  # configurations that the scheduler stopped, or whose every replicate failed: unchanged
    before: int  # the sweep's trials before it grew
    source_kept: bool = False  # a warm start's source has the same values as before: its trained model still serves

    def lines(self, sweep_dir: Path) -> list[str]:
        values = ", ".join(map(value_text, self.added))
        return [
            f"growing the study: {self.dimension} {values} added to each configuration that completed its steps "
            f"({self.grown} of {self.grown + self.kept}): {_count(len(self.round.trials), 'new trial')} in "
            f"{self.round.folder(sweep_dir)}; the {self.before} trials that ran are kept"
        ]


def added_replicates(old: SweepSpec, new: SweepSpec) -> list[Any] | None:
    """The replicate values that `new` adds to `old`, where that is all that changed; None otherwise."""
    dimension = old.replicates
    if dimension is None or new.replicates != dimension:
        return None
    before, after = old.replicate_values, new.replicate_values
    added = [value for value in after if value not in before]
    if not added or any(value not in after for value in before):
        return None
    same_space = new.model_copy(update={"space": {**new.space, dimension: old.space[dimension]}})
    return added if same_space.model_dump() == old.model_dump() else None


def planned_growth(spec_path: Path, spec: SweepSpec, name: str, folder: Path, state: dict[str, Any]) -> Growth | None:
    """The growth that rerunning the sweep in `folder` with `spec` asks for, if its spec only adds replicate values
    to the one it last ran; refuses while that run is unfinished (it ran with fewer replicates)."""
    old = parse_spec(state.get("spec_text", ""), state.get("spec_path", spec_path))
    added = added_replicates(old, spec)
    if added is None:
        return None
    dimension = spec.replicates
    if "finished" not in state:
        raise InputError(
            spec_path,
            f"space.{dimension}",
            f"adds {dimension} {some_of(list(map(value_text, added)))} to sweep {name}, which has not finished",
            f"rerun it with the values it ran with, [{', '.join(map(value_text, old.replicate_values))}], to finish "
            "it; then add them",
        )
    if not (folder / RESULTS_FILE).is_file():
        missing = "missing: the sweep's trials are not known"
        raise InputError(folder / RESULTS_FILE, "", missing, "rerun it with the values it ran with")
    table = pd.read_csv(folder / RESULTS_FILE)
    completed, kept = _configurations(folder, table, list(spec.configuration_space))
    if not completed:
        raise InputError(
            spec_path,
            f"space.{dimension}",
            f"adds {dimension} values to sweep {name}, none of whose configurations completed its steps",
            "add them to a study that has a configuration to replicate, or --restart to start over",
        )
    trials = [
        {**values, CONFIGURATION: number, dimension: value}
        for number, values in sorted(completed.items())
        for value in added
    ]
    rounds = state.get("rounds", [])
    source_kept = spec.warm_start is not None and old.source_spec().model_dump() == spec.source_spec().model_dump()
    return Growth(Round(2 + len(rounds), trials), dimension, added, len(completed), kept, len(table), source_kept)


def _configurations(folder: Path, table: pd.DataFrame, dimensions: list[str]) -> tuple[dict[int, dict[str, Any]], int]:
    """The configurations of the sweep that completed their steps (by number: their values of `dimensions`, from a
    completed trial's recipe, `table` the sweep's results), and how many others there are."""
    done = set(table.trial_id[table.stop_reason == StopReason.COMPLETED.value].astype(str))
    completed: dict[int, dict[str, Any]] = {}
    for trial_folder in trial_folders(folder):
        recipe = read_recipe(trial_folder)
        if recipe.trial_id in done and CONFIGURATION in recipe.config:
            values = {name: recipe.config[name] for name in dimensions if name in recipe.config}
            completed.setdefault(int(recipe.config[CONFIGURATION]), values)
    others = set(table[CONFIGURATION].dropna().astype(int)) - set(completed)
    return completed, len(others)


def record_round(state: dict[str, Any], growth: Growth) -> None:
    """Keep the round in the sweep's state file: a rerun of the same command resumes it, and the report says it."""
    state.setdefault("rounds", []).append(
        {
            "round": growth.round.number,
            "dimension": growth.dimension,
            "added": growth.added,
            "configurations": growth.grown,
            "before": growth.before,
            "trials": growth.round.trials,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    state.pop("finished", None)


def recorded_rounds(state: dict[str, Any]) -> list[Round]:
    return [Round(entry["round"], entry["trials"]) for entry in state.get("rounds", [])]


def planned_trials(state: dict[str, Any], spec: SweepSpec) -> int:
    """The trials the sweep runs in all: its spec's, or, once grown, those it had and those the last round adds."""
    rounds = state.get("rounds", [])
    return rounds[-1]["before"] + len(rounds[-1]["trials"]) if rounds else spec.trial_count


def growth_records(state: dict[str, Any]) -> dict[str, str]:
    """Each round that grew the sweep, in words, by when: for the report's provenance."""
    return {
        f"grown, {entry['at']}": f"{entry['dimension']} {', '.join(map(value_text, entry['added']))} added to each "
        f"configuration that completed ({entry['configurations']}): {_count(len(entry['trials']), 'trial')} in "
        f"{ROUND_FOLDER.format(entry['round'])}/"
        for entry in state.get("rounds", [])
    }


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def grown_text(state: dict[str, Any]) -> str:
    """How the study grew, in a phrase: "seed 2, 3 added later (see Provenance)"."""
    added = [value for entry in state.get("rounds", []) for value in entry["added"]]
    dimension = state["rounds"][0]["dimension"]
    return f"{dimension} {', '.join(map(value_text, added))} added later (see Provenance)"
