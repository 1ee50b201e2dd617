"""The results table of a sweep: one row per trial, from each trial's reported history (pandas only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

TIMING_COLUMNS = ("train_s", "eval_s", "setup_s", "wall_s", "steps_per_s", "rays_per_s")


@dataclass(frozen=True)
class TrialRecord:
    trial_id: str
    config: dict[str, Any]
    history: pd.DataFrame  # one row per report (milestone)
    error: str | None
    checkpoint: str | None


def stop_reason(record: TrialRecord, target_steps: int, pruned_name: str) -> str:
    """`completed`, `error: ...`, or the scheduler's stop (`asha_pruned`) for a trial that ended early."""
    if record.error:
        return "error: " + record.error.strip().splitlines()[-1][:200]
    steps_done = int(record.history["step"].max()) if len(record.history) else 0
    return "completed" if steps_done >= target_steps else pruned_name


def results_table(
    records: Sequence[TrialRecord], dimensions: Sequence[str], metric: str, mode: str, pruned_name: str
) -> pd.DataFrame:
    rows = []
    for record in records:
        history = record.history
        last = history.iloc[-1].to_dict() if len(history) else {}
        target = int(record.config.get("steps", 0))
        values = history[metric].dropna() if metric in history else pd.Series(dtype=float)
        row = {"trial_id": record.trial_id}
        row.update({name: record.config.get(name) for name in dimensions})
        row.update(
            {
                f"final_{metric}": last.get(metric),
                f"best_{metric}": (values.max() if mode == "max" else values.min()) if len(values) else None,
                "psnr": last.get("psnr"),
                "ssim": last.get("ssim"),
                "lpips": last.get("lpips"),
                "steps_done": int(last.get("step", 0) or 0),
                "stop_reason": stop_reason(record, target, pruned_name),
                "frames_used": last.get("frames_used"),
                **{column: last.get(column) for column in TIMING_COLUMNS},
                "resumed_from_step": last.get("resumed_from_step"),
                "checkpoint": record.checkpoint,
                "mlflow_run_id": last.get("mlflow_run_id"),
                "tracking_failures": last.get("tracking_failures"),
            }
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values(f"best_{metric}", ascending=mode == "min", na_position="last", kind="stable")
    return table.reset_index(drop=True)


def best_row(table: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    scored = table.dropna(subset=[f"best_{metric}"])
    return scored.iloc[0].to_dict() if len(scored) else None
