"""A study grows: values added to one dimension of a finished study's spec run only the trials they add.

The report's advice where an answer is not yet sure has two forms, and each has one answer. "About 13 replicates a
level would settle it": more seeds. Values added to the replicate dimension (`seed: {values: [0, 1]}` to `[0, 1, 2,
3]`) give each configuration that completed its steps the added replicates; a configuration that the scheduler
stopped keeps its replicates and its verdict (new replicates of it would be stopped at the same rung, or would
reopen a decision ASHA took on the others). "Quality was still rising at the most frames": more frames. Values added
to a searched dimension of a grid (`frames: {values: [6, 18, 42]}` to `[6, 18, 42, 60]`) run every configuration
of the added levels with every replicate, as a study of their own: with a scheduler, only where the study stratifies
by that dimension, so that the scheduler compares the new levels among themselves, as it compared each old one.

Either way every trial that ran is kept, and the new ones run as a Ray Tune run of their own, a round, in
`SWEEP/round-N/`, numbered on from the sweep's configurations, so that the results, the report and MLflow count them
with the others. A rerun of the same command resumes an interrupted round. Deciding needs no Ray.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nerftune.errors import InputError
from nerftune.outcomes import StopReason
from nerftune.results import RESULTS_FILE
from nerftune.spec import CONFIGURATION, Dimension, SweepSpec, parse_spec, value_text
from nerftune.trials import ROUND_FOLDER, read_recipe, trial_folders


@dataclass(frozen=True)
class Round:
    """A Ray Tune run of the trials that a growth added, in the sweep's folder `round-N/`: the added replicates of
    configurations that ran (`trials`), or a study of the added levels of one dimension (`levels`)."""

    number: int  # 2 for a sweep's first growth: its first run is round 1
    count: int  # its trials
    trials: list[dict[str, Any]] | None = None  # each added replicate: its configuration's values and number, its value
    levels: tuple[str, list[Any]] | None = None  # the dimension and its added values
    first: int = 0  # with `levels`: the number of its first configuration, after the sweep's last

    def folder(self, sweep_dir: Path) -> Path:
        return Path(sweep_dir) / ROUND_FOLDER.format(self.number)

    def spec_of(self, spec: SweepSpec) -> SweepSpec:
        return levels_spec(spec, *self.levels)


def levels_spec(spec: SweepSpec, dimension: str, added: list[Any]) -> SweepSpec:
    """A levels round's own study: the sweep's spec with only the added values of its dimension."""
    return spec.model_copy(update={"space": {**spec.space, dimension: Dimension(values=list(added))}})


@dataclass(frozen=True)
class Growth:
    """What rerunning a finished study with added values will train."""

    round: Round
    dimension: str
    added: list[Any]
    before: int  # the sweep's trials before it grew
    grown: int = 0  # added replicates: the configurations that completed their steps, each of which gets them
    kept: int = 0  # added replicates: the configurations that the scheduler stopped, or that failed, unchanged
    source_kept: bool = False  # a warm start's source has the same values as before: its trained model still serves

    def lines(self, sweep_dir: Path) -> list[str]:
        values = ", ".join(map(value_text, self.added))
        where = (
            f"{_count(self.round.count, 'new trial')} in {self.round.folder(sweep_dir)}; the {self.before} trials that "
            "ran are kept"
        )
        if self.round.trials is not None:
            to = f"each configuration that completed its steps ({self.grown} of {self.grown + self.kept})"
            return [f"growing the study: {self.dimension} {values} added to {to}: {where}"]
        return [f"growing the study: {self.dimension} {values} added, a study of its own with every replicate: {where}"]


def added_values(old: SweepSpec, new: SweepSpec) -> tuple[str, list[Any]] | None:
    """The dimension to whose listed values `new` adds some, and those values, where that is all that changed
    from `old`; None otherwise."""
    changed = [name for name in {**old.space, **new.space} if old.space.get(name) != new.space.get(name)]
    if len(changed) != 1:
        return None
    name = changed[0]
    before, after = old.space.get(name), new.space.get(name)
    if before is None or after is None or before.values is None or after.values is None:
        return None
    added = [value for value in after.values if value not in before.values]
    if not added or any(value not in after.values for value in before.values):
        return None
    unchanged = new.model_copy(update={"space": {**new.space, name: before}})
    return (name, added) if unchanged.model_dump() == old.model_dump() else None


def planned_growth(spec_path: Path, spec: SweepSpec, name: str, folder: Path, state: dict[str, Any]) -> Growth | None:
    """The growth that rerunning the sweep in `folder` with `spec` asks for, if its spec only adds values to one
    dimension of the one it last ran; refuses, in one line, a growth that cannot be."""
    old = parse_spec(state.get("spec_text", ""), state.get("spec_path", spec_path))
    found = added_values(old, spec)
    if found is None:
        return None
    dimension, added = found
    problem = _Refusal(spec_path, dimension, f"adds {dimension} {', '.join(map(value_text, added))} to sweep {name}")
    if "finished" not in state:
        ran = ", ".join(map(value_text, old.space[dimension].values))
        hint = f"rerun it with the values it ran with, [{ran}], to finish it; then add them"
        problem.refuse("which has not finished", hint)
    if not (folder / RESULTS_FILE).is_file():
        missing = "missing: the sweep's trials are not known"
        raise InputError(folder / RESULTS_FILE, "", missing, "rerun it with the values it ran with")
    table = pd.read_csv(folder / RESULTS_FILE)
    number = 2 + len(state.get("rounds", []))
    source_kept = spec.warm_start is not None and old.source_spec().model_dump() == spec.source_spec().model_dump()
    if dimension == spec.replicates:
        completed, kept = _configurations(folder, table, list(spec.configuration_space))
        if not completed:
            problem.refuse("none of whose configurations completed its steps", "--restart to start over")
        trials = [
            {**values, CONFIGURATION: configuration, dimension: value}
            for configuration, values in sorted(completed.items())
            for value in added
        ]
        grown = Round(number, len(trials), trials=trials)
        return Growth(grown, dimension, added, len(table), len(completed), kept, source_kept)
    _check_levels(problem, old, spec, dimension)
    first = int(table[CONFIGURATION].max()) + 1 if table.get(CONFIGURATION, pd.Series()).notna().any() else 0
    levels = Round(number, levels_spec(spec, dimension, added).trial_count, levels=(dimension, added), first=first)
    return Growth(levels, dimension, added, len(table), source_kept=source_kept)


@dataclass(frozen=True)
class _Refusal:
    """The one line that refuses a growth: the spec, the grown dimension's field, what was added and why not."""

    spec_path: Path
    dimension: str
    what: str

    def refuse(self, problem: str, hint: str) -> None:
        raise InputError(self.spec_path, f"space.{self.dimension}", f"{self.what}, {problem}", hint)


def _check_levels(problem: _Refusal, old: SweepSpec, spec: SweepSpec, dimension: str) -> None:
    """New levels are a study of their own only where nothing in the sweep compared the old levels with each other
    but by the replicates' means: a dimension searched from the start, on a grid, stratified or unscheduled."""
    if dimension not in old.searched:
        problem.refuse("which it held at one value: every configuration that ran would change", "--restart instead")
    if spec.search.algorithm != "grid":
        problem.refuse(
            f"a {spec.search.algorithm} search: its searcher weighed the old levels, not these",
            "grow a grid search, or --restart to search every level afresh",
        )
    if spec.scheduler.type != "none" and dimension not in spec.stratify:
        problem.refuse(
            f"whose scheduler compared configurations across {dimension}: new levels would meet other rivals",
            f"grow a study that stratifies by {dimension} or has no scheduler, or --restart",
        )


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
    grown = growth.round
    state.setdefault("rounds", []).append(
        {
            "round": grown.number,
            "dimension": growth.dimension,
            "added": growth.added,
            "before": growth.before,
            "count": grown.count,
            "trials": grown.trials,
            "first": grown.first,
            "configurations": growth.grown,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    state.pop("finished", None)


def recorded_rounds(state: dict[str, Any]) -> list[Round]:
    return [
        Round(
            entry["round"],
            entry["count"],
            entry["trials"],
            None if entry["trials"] is not None else (entry["dimension"], entry["added"]),
            entry["first"],
        )
        for entry in state.get("rounds", [])
    ]


def planned_trials(state: dict[str, Any], spec: SweepSpec) -> int:
    """The trials the sweep runs in all: its spec's, or, once grown, those it had and those the last round adds."""
    rounds = state.get("rounds", [])
    return rounds[-1]["before"] + rounds[-1]["count"] if rounds else spec.trial_count


def grew_replicates(state: dict[str, Any]) -> bool:
    return any(entry["trials"] is not None for entry in state.get("rounds", []))


def growth_records(state: dict[str, Any]) -> dict[str, str]:
    """Each round that grew the sweep, in words, by when: for the report's provenance."""
    records = {}
    for entry in state.get("rounds", []):
        added = f"{entry['dimension']} {', '.join(map(value_text, entry['added']))} added"
        to = f" to each configuration that completed ({entry['configurations']})" if entry["trials"] is not None else ""
        records[f"grown, {entry['at']}"] = (
            f"{added}{to}: {_count(entry['count'], 'trial')} in {ROUND_FOLDER.format(entry['round'])}/"
        )
    return records


GROWN_TAG = "nerftune.grown"


def growth_tags(state: dict[str, Any]) -> dict[str, str]:
    """The MLflow tag of the sweep's run that says how the study grew, where it did."""
    records = [f"{when.removeprefix('grown, ')}: {what}" for when, what in growth_records(state).items()]
    return {GROWN_TAG: "; ".join(records)} if records else {}


def grown_text(state: dict[str, Any]) -> str:
    """How the study grew, in a phrase: "seed 2, 3 and frames 60 added later (see Provenance)"."""
    added = [f"{e['dimension']} {', '.join(map(value_text, e['added']))}" for e in state.get("rounds", [])]
    return f"{' and '.join(added)} added later (see Provenance)"


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
