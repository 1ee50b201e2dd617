"""The results table of a sweep: one row per trial, from each trial's reported history (pandas only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from nerftune.dimensions import total_steps
from nerftune.outcomes import (
    MACHINE,
    MASK_ERROR_COLUMNS,
    METRICS,
    NOVEL_VIEWS,
    STAGE_COLUMNS,
    SUBSET_SFM,
    TIMINGS,
    WARM_START_COLUMNS,
    StopReason,
    error_reason,
)
from nerftune.spec import CONFIGURATION, value_text
from nerftune.trials import milestones, read_recipe

RESULTS_FILE = "results.csv"
ERROR_FILE = "error.txt"  # Ray Tune's, in a trial's folder


@dataclass(frozen=True)
class TrialRecord:
    trial_id: str
    config: dict[str, Any]
    history: pd.DataFrame  # one row per report (milestone)
    error: str | None
    checkpoint: str | None
    unfinished: bool = False  # neither ended nor failed: the run was interrupted (Ctrl-C, SIGUSR1) and resumes it


def record_of(result: Any) -> TrialRecord:
    """A trial's record from Ray Tune's `Result` (its config, reported history, error and last checkpoint)."""
    history = result.metrics_dataframe if result.metrics_dataframe is not None else pd.DataFrame()
    if "step" not in history:
        history = pd.DataFrame(columns=["step"])
    trial_id = (result.metrics or {}).get("trial_id") or Path(result.path).name
    checkpoint = result.checkpoint.path if result.checkpoint else None
    error = f"{type(result.error).__name__}: {result.error}" if result.error else None
    return TrialRecord(str(trial_id), dict(result.config or {}), history, error, checkpoint)


def record_from_folder(trial_dir: Path) -> TrialRecord:
    """A trial's record from its folder alone (its recipe, Ray's result.json, error.txt): what `nerftune report`
    reads, on a finished sweep as on one still running. An error counts only if nothing was reported after it."""
    recipe = read_recipe(trial_dir)
    rows = milestones(trial_dir)
    history = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["step"])
    error_file, results_file = trial_dir / ERROR_FILE, trial_dir / "result.json"
    error = None
    if error_file.is_file() and (
        not results_file.is_file() or error_file.stat().st_mtime >= results_file.stat().st_mtime
    ):
        error = error_file.read_text().strip() or "error"
    saved = [row["checkpoint"] for row in rows if row.get("checkpoint")]
    return TrialRecord(
        recipe.trial_id, recipe.config, history.reset_index(drop=True), error, saved[-1] if saved else None
    )


def stop_reason(record: TrialRecord, target_steps: int) -> str:
    """`completed`, `error: ...`, the scheduler's stop (`asha_pruned`) for a trial that ended early, or `unfinished`
    for one that an interrupted run left to its resume."""
    if record.unfinished:
        return StopReason.UNFINISHED.value
    if record.error:
        return error_reason(record.error)
    steps_done = int(record.history["step"].max()) if len(record.history) else 0
    return StopReason.COMPLETED.value if steps_done >= target_steps else StopReason.PRUNED.value


def results_table(records: Sequence[TrialRecord], dimensions: Sequence[str], metric: str, mode: str) -> pd.DataFrame:
    rows = []
    for record in records:
        history = record.history
        last = history.iloc[-1].to_dict() if len(history) else {}
        target = total_steps(record.config) if "steps" in record.config else 0
        values = _whole_test_set(history)[metric].dropna() if metric in history else pd.Series(dtype=float)
        best = (values.max() if mode == "max" else values.min()) if len(values) else None
        row = {"trial_id": record.trial_id, CONFIGURATION: record.config.get(CONFIGURATION)}
        row.update({name: _cell(record.config.get(name)) for name in dimensions})
        row.update(
            {
                f"final_{metric}": last.get(metric),
                f"best_{metric}": best,
                **{name: last.get(name) for name in METRICS},
                "steps_done": int(last.get("step", 0) or 0),
                "stop_reason": stop_reason(record, target),
                "frames_used": last.get("frames_used"),
                **{column: last.get(column) for column in TIMINGS},
                "resumed_from_step": last.get("resumed_from_step"),
                "target_steps": target,
                "full_test": last.get("full_test"),
                **{column: last.get(column) for column in MACHINE},
                **{
                    column: last[column]
                    for column in (*SUBSET_SFM, *MASK_ERROR_COLUMNS, *STAGE_COLUMNS, *WARM_START_COLUMNS)
                    if column in last
                },
                "peak_gpu_mb": last.get("peak_gpu_mb"),
                **{column: last.get(column) for column in NOVEL_VIEWS},  # rendered in the trial (`trials: each`)
                "checkpoint": record.checkpoint,
                "mlflow_run_id": last.get("mlflow_run_id"),
                "tracking_failures": last.get("tracking_failures"),
            }
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        order = [f"best_{metric}", f"final_{metric}", "trial_id"]  # the same order on every run of the same trials
        table = table.sort_values(order, ascending=[mode == "min", mode == "min", True], na_position="last")
    return table.reset_index(drop=True)


def with_values(table: pd.DataFrame, values: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """`table` with what was measured of its trials after the sweep (`values`: per trial id, per column; the best
    trials' renders), in the trials' rows."""
    table = table.copy()
    for trial_id, row in values.items():
        for column, value in row.items():
            table.loc[table.trial_id == trial_id, column] = value
    return table


def _whole_test_set(history: pd.DataFrame) -> pd.DataFrame:
    """The milestones that scored every test image (`eval.max_images` thins the others), of the trial's last stage
    (with a `finetune` stage, its metrics score other images than the RGB stage's): what a trial's best is."""
    if "full_test" in history:
        history = history[history["full_test"].fillna(False).astype(bool)]
    if "stage" in history and len(history):
        history = history[history["stage"] == history["stage"].iloc[-1]]
    return history


def best_row(table: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    scored = table.dropna(subset=[f"best_{metric}"])
    return scored.iloc[0].to_dict() if len(scored) else None


def _cell(value: Any) -> Any:
    """Lists and mappings as JSON text, so that results.csv reads as the spec was written."""
    return value_text(value) if isinstance(value, (list, dict)) else value
