"""What a report reads from a sweep's folder: its state file (spec, provenance), every trial folder (config,
milestones, errors) and results.csv where the sweep has ended. It never trains and needs no Ray."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nerftune.errors import InputError
from nerftune.outcomes import METRICS, StopReason
from nerftune.results import RESULTS_FILE, record_from_folder, results_table
from nerftune.spec import SweepSpec, parse_spec
from nerftune.state import STATE_FILE, read_state
from nerftune.trials import RECIPE_FILE, trial_files
from nerftune.view_scores import VIEW_SCORES_FILE

CURVE_COLUMNS = ("step", *METRICS, "test_images", "full_test", "train_s", "wall_s")
RENDER_COLUMNS = ("trial_id", "path", "folder", "views", "fps")  # path: the paths' name; folder: renders/<path>


@dataclass(frozen=True)
class SweepData:
    folder: Path
    spec: SweepSpec
    state: dict[str, Any]
    trials: pd.DataFrame  # one row per trial, as results.csv
    curves: pd.DataFrame  # one row per trial and milestone: trial_id, configuration, the CURVE_COLUMNS
    renders: pd.DataFrame  # one row per rendered path of a trial: RENDER_COLUMNS
    # one row per test view of a trial and whole-test-set scoring: trial_id and test_view_scores.csv's columns
    view_scores: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def dimensions(self) -> list[str]:
        """The searched dimensions but the replicate one: what tells configurations apart."""
        return list(self.spec.configuration_space)


def load_sweep(folder: Path) -> SweepData:
    folder = Path(folder)
    state = read_state(folder) if folder.is_dir() else None
    if state is None:
        raise InputError(
            folder,
            "SWEEP_DIR",
            f"is not a sweep folder (no {STATE_FILE})",
            "give the folder a sweep wrote, e.g. sweeps/demo",
        )
    spec = parse_spec(state["spec_text"], state.get("spec_path", folder / STATE_FILE))
    trial_dirs = [p.parent for p in trial_files(folder, RECIPE_FILE)]
    records = [record_from_folder(d) for d in trial_dirs]
    trials = results_table(records, list(spec.space), spec.metric.name, spec.metric.mode)
    if len(trials):
        trials["configuration"] = trials["configuration"].fillna(0).astype(int)
        trials["stop_reason"] = _stop_reasons(trials, folder / RESULTS_FILE)
    curves = pd.concat(
        [_curve(record.trial_id, record.history) for record in records] or [pd.DataFrame(columns=CURVE_COLUMNS)],
        ignore_index=True,
    )
    if len(trials):
        curves = curves.merge(trials[["trial_id", "configuration"]], on="trial_id")
    by_trial = {record.trial_id: d for record, d in zip(records, trial_dirs)}
    return SweepData(folder, spec, state, trials, curves, _renders(by_trial), _view_scores(by_trial))


def _stop_reasons(trials: pd.DataFrame, results_file: Path) -> pd.Series:
    """Trials that stopped short: the scheduler's stop where results.csv says so, else still unfinished."""
    ended = pd.read_csv(results_file).set_index("trial_id").stop_reason if results_file.is_file() else pd.Series()
    short = trials.stop_reason == StopReason.PRUNED.value
    known = trials.trial_id.map(ended)
    return trials.stop_reason.where(~short, known.fillna(StopReason.UNFINISHED.value))


def _curve(trial_id: str, history: pd.DataFrame) -> pd.DataFrame:
    curve = history.reindex(columns=list(CURVE_COLUMNS))
    curve.insert(0, "trial_id", trial_id)
    return curve


def _renders(trial_dirs: dict[str, Path]) -> pd.DataFrame:
    rows = []
    for trial_id, trial_dir in trial_dirs.items():
        for summary in sorted(trial_dir.glob("renders/*/render.json")):
            values = json.loads(summary.read_text())
            folder = summary.parent
            rows.append(
                {
                    "trial_id": trial_id,
                    "path": folder.name,
                    "folder": folder,
                    **{k: values.get(k) for k in ("views", "fps")},
                }
            )
    return pd.DataFrame(rows, columns=list(RENDER_COLUMNS))


def _view_scores(trial_dirs: dict[str, Path]) -> pd.DataFrame:
    tables = [
        pd.read_csv(folder / VIEW_SCORES_FILE).assign(trial_id=trial_id)
        for trial_id, folder in trial_dirs.items()
        if (folder / VIEW_SCORES_FILE).is_file()
    ]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["trial_id", "step", "view"])
