"""How much the seed matters at each level of a dimension: "at few frames the seed decides more" as numbers. Per
level, the replicate standard deviation pooled over the configurations at that level (weights n - 1) with its 95 %
interval (the chi-square interval of a standard deviation), and across levels Bartlett's test of equal variances.
With 2 or 3 replicates a configuration the intervals are wide: only a large difference in noise shows."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from nerftune.report.stats import CONFIDENCE


def noise_by_level(seeds: pd.DataFrame, dimensions: Sequence[str]) -> pd.DataFrame:
    """Per dimension with 2 levels or more that have replicates, per level: how many configurations, the degrees of
    freedom, the pooled replicate standard deviation and its interval. `seeds`: `stats.seed_table`'s."""
    usable = seeds[seeds.n > 1] if len(seeds) else seeds
    rows = []
    for dimension in dimensions:
        levels = list(usable.groupby(dimension, sort=True)) if len(usable) else []
        if len(levels) < 2:
            continue
        for level, group in levels:
            dof = int((group.n - 1).sum())
            std = math.sqrt(((group.n - 1) * group["std"] ** 2).sum() / dof)
            rows.append(
                {
                    "dimension": dimension,
                    "level": level,
                    "configurations": len(group),
                    "dof": dof,
                    "std": std,
                    "ci_low": std * math.sqrt(dof / stats.chi2.ppf(0.5 + CONFIDENCE / 2, dof)),
                    "ci_high": std * math.sqrt(dof / stats.chi2.ppf(0.5 - CONFIDENCE / 2, dof)),
                }
            )
    return pd.DataFrame(rows)


def bartlett_p(levels: pd.DataFrame) -> float:
    """Bartlett's test that every level's noise is the same, from `noise_by_level`'s rows of one dimension (each
    level's pooled variance and its degrees of freedom); NaN where a level has none."""
    dof, variance = levels.dof.to_numpy(float), (levels["std"] ** 2).to_numpy(float)
    if len(levels) < 2 or (variance <= 0).any():
        return math.nan
    total, pooled = dof.sum(), (dof * variance).sum() / dof.sum()
    statistic = total * math.log(pooled) - (dof * np.log(variance)).sum()
    correction = 1 + ((1 / dof).sum() - 1 / total) / (3 * (len(levels) - 1))
    return float(stats.chi2.sf(statistic / correction, len(levels) - 1))


def noise_lines(table: pd.DataFrame, metric: str, noise: str) -> list[str]:
    """A line per dimension: each level's noise with its interval, and whether they differ."""
    lines = []
    for dimension, levels in table.groupby("dimension", sort=False):
        each = "; ".join(
            f"{level}: {row['std']:.2g} ({row.ci_low:.2g} to {row.ci_high:.2g})"
            for level, row in levels.set_index("level").iterrows()
        )
        p = bartlett_p(levels)
        verdict = f"Bartlett's p {p:.2g}" + (" (a difference)" if p < 0.05 else " (no difference shown)")
        lines.append(f"The {noise} by {dimension} ({metric} sd, 95 % interval): {each}; {verdict}.")
    return lines
