"""What a study found, in a few lines for the console at the end of a sweep, the report's summary and the MLflow
experiment's description: its best configuration over its replicates and, for the frames and steps it varied, how
many are enough."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from nerftune.dimensions import FRAME_SUBSET
from nerftune.report.enough import headline_lines
from nerftune.report.stats import final_trials, p_better, seed_table, welch_p
from nerftune.report.subset_spread import subset_means
from nerftune.spec import SweepSpec


def study_lines(table: pd.DataFrame, spec: SweepSpec, tolerance: float | None = None) -> list[str]:
    """`table`: results.csv's; `tolerance`: how much worse than the most is still enough (default: `enough`'s)."""
    lines = best_configuration_lines(table, spec)
    if spec.replicates and len(table):
        final, dimensions, _ = comparable(table, spec)
        lines += headline_lines(final, spec, dimensions, tolerance) if len(final) else []
    return lines


def comparable(table: pd.DataFrame, spec: SweepSpec) -> tuple[pd.DataFrame, list[str], str]:
    """The rows a study's answers compare, the dimensions that tell configurations apart, and what the replicates
    are: the final trials, or, where frame subsets were searched beside other dimensions, each subset's seed mean
    (subsets are draws of frames, not settings: every other setting is judged over them)."""
    final, dimensions = final_trials(table), list(spec.configuration_space)
    if FRAME_SUBSET in dimensions and len(dimensions) > 1 and len(final):
        final = subset_means(final, dimensions, [spec.metric.name])
        return final, [d for d in dimensions if d != FRAME_SUBSET], "frame subsets"
    return final, dimensions, f"{spec.replicates} replicates"


def best_configuration_lines(table: pd.DataFrame, spec: SweepSpec) -> list[str]:
    """With replicates, the answer a study gives: the configuration with the best mean over its replicates, with
    their spread and the mean's 95 % interval (one seed's luck is not a finding)."""
    if not spec.replicates:
        return []
    metric = spec.metric.name
    final, dimensions, replicates = comparable(table, spec)
    seeds = seed_table(final, dimensions, metric) if len(table) else pd.DataFrame()
    seeds = seeds[seeds.n > 1] if len(seeds) else seeds
    if not len(seeds):
        return [f"no configuration has 2 {spec.replicates} replicates that completed: no best configuration yet"]
    ranked = seeds.sort_values("mean", ascending=spec.metric.mode == "min").to_dict("records")
    best = ranked[0]

    def named(row: dict) -> str:
        return ", ".join(f"{name}={row[name]}" for name in dimensions)

    title = f"best configuration ({named(best)})" if dimensions else "the configuration"  # a study of seeds alone
    lines = [
        f"{title}: {metric} {best['mean']:.3f} over {best['n']} {replicates} "
        f"({best['min']:.3f} to {best['max']:.3f}; 95 % interval {best['ci_low']:.2f} to "
        f"{best['ci_high']:.2f})"
    ]
    if len(ranked) > 1:  # is the best told apart from the runner-up, or is its lead within seed noise?
        second = ranked[1]
        a, b = (
            final.loc[final.configuration == row["configuration"], metric].dropna().to_numpy(float)
            for row in (second, best)
        )
        welch = welch_p(a, b)
        lines.append(
            f"next best ({named(second)}): {metric} {second['mean']:.3f}; the best beats it with probability "
            f"{p_better(a, b, spec.metric.mode, np.random.default_rng(0)):.2f}"
            + (f" (Welch's p {welch:.2g})" if math.isfinite(welch) else "")
        )
    return lines
