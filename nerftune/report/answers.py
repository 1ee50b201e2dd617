"""What a study found, in a few lines for the console at the end of a sweep, the report's summary and the MLflow
experiment's description: its best configuration over its replicates and, for the frames and steps it varied, how
many are enough."""

from __future__ import annotations

import pandas as pd

from nerftune.report.enough import headline_lines
from nerftune.report.stats import best_configuration_lines, comparable
from nerftune.spec import SweepSpec


def study_lines(table: pd.DataFrame, spec: SweepSpec, tolerance: float | None = None) -> list[str]:
    """`table`: results.csv's; `tolerance`: how much worse than the most is still enough (default: `enough`'s)."""
    lines = best_configuration_lines(table, spec)
    if spec.replicates and len(table):
        final, dimensions, _ = comparable(table, spec)
        lines += headline_lines(final, spec, dimensions, tolerance) if len(final) else []
    return lines
