"""How many steps are enough, read off the learning curves: per configuration, each milestone at which 2 of its
trials or more scored the whole test set, against the last, as `enough` sets levels against the most.

A milestone at step s stands for a trial of s steps, since nerfstudio's schedules follow the step, not the run's
length (a test checks it to every digit). The milestones are the same trials, so each is compared with the last
within each trial: the seed's own luck, shared by both, cancels, where levels of independent trials would keep it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from nerftune.report.stats import mean_posterior

STEPS = "steps"


def steps_from_curves(
    curves: pd.DataFrame,
    final: pd.DataFrame,
    dimensions: Sequence[str],
    metric: str,
    mode: str,
    tolerance: float,
    seed: int = 0,
) -> pd.DataFrame:
    """Per configuration (value of `dimensions`), each milestone against the last: `enough.against_most`'s columns,
    the difference being the trials' mean difference from their own last milestone, and `p_within` the probability
    that its true value is no more than `tolerance` worse; `paired` marks the table. Empty where `steps` is itself
    a dimension (its own comparison answers)."""
    if STEPS in dimensions or not len(curves) or not len(final):
        return pd.DataFrame()
    whole = curves[curves.full_test.fillna(True).astype(bool) & curves.trial_id.isin(final.trial_id)]
    rows = whole[["trial_id", "step", metric]].merge(final[["trial_id", *dimensions]], on="trial_id")
    table, generator = [], np.random.default_rng(seed)
    groups = rows.groupby(list(dimensions), sort=True, dropna=False) if dimensions else [((), rows)]
    for keys, group in groups:
        keys = keys if isinstance(keys, tuple) else (keys,)
        by_step = group.pivot_table(index="trial_id", columns="step", values=metric)  # a trial a row
        scored = by_step.notna().sum()
        levels = sorted(scored[scored >= 2].index)
        if len(levels) < 2:
            continue
        last = levels[-1]
        for level in levels:
            both = by_step[[level, last]].dropna() if level != last else by_step[[last]].dropna()
            if len(both) < 2:
                continue
            differences = (both[level] - both[last]).to_numpy(float)
            worse = -differences if mode == "max" else differences
            table.append(
                {
                    **dict(zip(dimensions, keys)),
                    STEPS: level,
                    "most": last,
                    "n": len(both),
                    "mean": both[level].mean(),
                    "std": differences.std(ddof=1) if level != last else math.nan,  # the spread of the differences
                    "difference": differences.mean(),
                    "p_within": float((mean_posterior(worse, generator) <= tolerance).mean())
                    if level != last
                    else math.nan,
                    "paired": True,
                }
            )
    return pd.DataFrame(table)
