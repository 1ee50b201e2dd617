"""How much which frames a count takes matters, beside the seed: a one-way analysis of variance of the final metric
over the `frame_subset` values, within each value of the other dimensions (a frame count, say), with the seeds as
replicates.

The subsets' means spread for two reasons: the subsets differ, and each mean is of a few seeds. With n seeds per
subset and seed standard deviation s (pooled within subsets), seeds alone spread the means by about s / sqrt(n);
what the means spread beyond that is the subsets' own: sqrt(max(0, var(means) - s^2 / n)), the between-subset
standard deviation of the random-effects model, with the F-test of "the subsets do not matter".
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from nerftune.dimensions import FRAME_SUBSET

POOLED_NOTE = (
    f"Frame subsets pooled: each point is one {FRAME_SUBSET}'s mean over its replicates, and the bands and tests take "
    f"the subsets as the replicates (which frames a count took is part of the noise here)."
)


def subset_spread(final: pd.DataFrame, others: Sequence[str], metric: str) -> pd.DataFrame:
    """Per value of `others`: subsets, seeds per subset (the fewest), the seed sd within subsets, the sd of the
    subsets' means, what seeds alone would give it, the subsets' own sd beyond that, and the F-test's p-value."""
    rows = []
    groups = final.groupby(list(others), sort=True, dropna=False) if others else [((), final)]
    for keys, group in groups:
        keys = keys if isinstance(keys, tuple) else (keys,)
        samples = [g[metric].dropna().to_numpy(float) for _, g in group.groupby(FRAME_SUBSET, sort=True)]
        samples = [s for s in samples if len(s) >= 2]
        if len(samples) < 2:
            continue
        n = min(len(s) for s in samples)
        seed_var = float(np.mean([s.var(ddof=1) for s in samples]))
        means_var = float(np.var([s.mean() for s in samples], ddof=1))
        rows.append(
            {
                **dict(zip(others, keys)),
                "subsets": len(samples),
                "seeds": n,
                "seed_sd": math.sqrt(seed_var),
                "subset_means_sd": math.sqrt(means_var),
                "from_seeds_alone": math.sqrt(seed_var / n),
                "subset_sd": math.sqrt(max(0.0, means_var - seed_var / n)),
                "anova_p": float(stats.f_oneway(*samples).pvalue),
            }
        )
    return pd.DataFrame(rows)


def spread_note(table: pd.DataFrame, others: Sequence[str], metric: str) -> str:
    """The table in words: per value of the other dimensions, whether the subsets add to the seed noise."""
    parts = []
    for row in table.to_dict("records"):
        where = f"at {', '.join(f'{name}={row[name]}' for name in others)}" if others else "over all trials"
        parts.append(
            f"{where}, the {row['subsets']} subsets' means spread by {row['subset_means_sd']:.2f} (sd), seeds "
            f"alone would give {row['from_seeds_alone']:.2f}, so the subsets add {row['subset_sd']:.2f} "
            f"(ANOVA p {row['anova_p']:.2g})"
        )
    return (
        f"Which frames or which seed ({metric}): " + "; ".join(parts) + ". The subsets' own spread is what their "
        "means vary by beyond what their few seeds make them vary (random-effects one-way ANOVA); 0: no sign that "
        "which frames a count takes matters more than the seed."
    )


def subset_means(final: pd.DataFrame, dimensions: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per configuration (a setting on one frame subset): its settings and its replicates' mean of each
    metric, numbered by the setting without the subset, so that the subsets become that setting's replicates."""
    settings = [d for d in dimensions if d != FRAME_SUBSET]
    means = final.groupby("configuration").agg({**{d: "first" for d in dimensions}, **{m: "mean" for m in metrics}})
    means = means.reset_index(drop=True)
    means["configuration"] = means.groupby(settings, dropna=False, sort=True).ngroup() if settings else 0
    return means
