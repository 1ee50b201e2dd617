"""How much of a costly dimension is enough: the fewest frames (steps, fine-tuning steps) whose quality is within a
tolerance of the most compared, with the probability that it truly is.

Each level is set against the largest one compared, the default a researcher would otherwise take ("use every frame"),
rather than against whichever level scored best: the best of several noisy means is biased upwards, and more so the
more levels there are. The probability comes from the same posterior of each level's mean as the comparisons of
neighbouring levels (`stats.p_better`), so with 2 or 3 seeds it stays modest unless the gap is far outside the noise.
"""

from __future__ import annotations

import functools
import math
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as scipy_stats

from nerftune.dimensions import COSTLY_DIMENSIONS
from nerftune.outcomes import metric_amount
from nerftune.report.stats import best_per_level, mean_posterior
from nerftune.spec import MetricSpec, SweepSpec

SURE = 0.9  # the probability at which a level is called surely enough (the plan's `SURE_MARGINS` assume it)
QUANTILE_POINTS = 20000  # of a Student t, for the distribution of a difference of two
MOST_REPLICATES = 100  # beyond this many a level, more replicates are no answer: the gap is about the tolerance
MAX_LINES = 6  # the answers spelt out on the page; its CSV holds every group's


def tolerance_of(metric: MetricSpec, asked: float | None = None) -> float:
    """How much worse than the most is still enough: as asked (`nerftune report --within`), as the spec's metric
    says (`tolerance`), or by default."""
    return asked if asked is not None else metric.smallest_difference()


def against_most(
    final: pd.DataFrame,
    dimension: str,
    others: Sequence[str],
    metric: str,
    mode: str,
    tolerance: float,
    seed: int = 0,
) -> pd.DataFrame:
    """Per value of the other dimensions, each level of `dimension` with 2 replicates or more (the levels compared)
    against the largest such level: the difference of means (level - most) and `p_within`, the probability that the
    level's true mean is no more than `tolerance` worse than the most's."""
    rows, generator = [], np.random.default_rng(seed)
    groups = final.groupby(list(others), sort=True, dropna=False) if others else [((), final)]
    for keys, group in groups:
        keys = keys if isinstance(keys, tuple) else (keys,)
        replicates = {
            level: values.dropna().to_numpy(float) for level, values in group.groupby(dimension, sort=True)[metric]
        }
        replicates = {level: values for level, values in replicates.items() if len(values) >= 2}
        if len(replicates) < 2:
            continue
        most = max(replicates)
        most_draws = mean_posterior(replicates[most], generator)
        for level, values in replicates.items():
            draws = mean_posterior(values, generator)
            gap = most_draws - draws if mode == "max" else draws - most_draws  # how much worse the level is
            rows.append(
                {
                    **dict(zip(others, keys)),
                    dimension: level,
                    "most": most,
                    "n": len(values),
                    "mean": values.mean(),
                    "std": values.std(ddof=1),
                    "difference": values.mean() - replicates[most].mean(),
                    "p_within": float((gap <= tolerance).mean()) if level != most else math.nan,
                }
            )
    return pd.DataFrame(rows)


def enough(
    final: pd.DataFrame,
    best_rows: pd.DataFrame | None,
    dimension: str,
    others: Sequence[str],
    within: Sequence[str],
    metric: str,
    mode: str,
    tolerance: float,
) -> tuple[pd.DataFrame, list[str]]:
    """The table of every level against the most (per value of the other dimensions, and, where other settings were
    searched, of each level's best configuration among them: `best_rows`, per value of the strata `within`) and
    the page's answers, the best configurations' first."""
    table = against_most(final, dimension, others, metric, mode, tolerance)
    lines = enough_lines(table, dimension, others, metric, mode, tolerance)
    if best_rows is not None:
        best = against_most(best_rows, dimension, within, metric, mode, tolerance)
        lines = enough_lines(best, dimension, within, metric, mode, tolerance, best_of=True) + lines
        searched = [name for name in others if name not in within]
        table = pd.concat([table, best.assign(**{name: "(best per level)" for name in searched})], ignore_index=True)
    return table, capped(lines, f"enough_{dimension.rsplit('.', 1)[-1]}.csv")


def enough_lines(
    table: pd.DataFrame,
    dimension: str,
    others: Sequence[str],
    metric: str,
    mode: str,
    tolerance: float,
    best_of: bool = False,
) -> list[str]:
    """Per group of `against_most`'s table (per value of `others`), its `answer`. `best_of`: the table compares
    each level's best configuration."""
    lines = []
    for where, group in _groups(table, others, best_of):
        answer = answer_of(group, dimension, metric, mode, tolerance)
        lines.append(f"{where[0].upper()}{where[1:]}: {answer}." if where else f"{answer[0].upper()}{answer[1:]}.")
    return lines


def headline_lines(
    final: pd.DataFrame, spec: SweepSpec, dimensions: Sequence[str], tolerance: float | None = None
) -> list[str]:
    """A study's answer for each costly dimension it varied, in a line for the console, the report's summary and
    MLflow: over each level's best configuration of the other settings, per value of the study's other strata."""
    metric, mode = spec.metric.name, spec.metric.mode
    tolerance, lines = tolerance_of(spec.metric, tolerance), []
    for dimension in [name for name in COSTLY_DIMENSIONS if name in dimensions]:
        others = [name for name in dimensions if name != dimension]
        within = [name for name in spec.stratify if name in others]
        best_of = len(others) > len(within)
        rows = best_per_level(final, dimension, metric, mode, within) if best_of else final
        table = against_most(rows, dimension, within, metric, mode, tolerance)
        for where, group in _groups(table, within, best_of):
            answer = answer_of(group, dimension, metric, mode, tolerance)
            lines.append(f"how many {dimension} are enough{f' ({where})' if where else ''}: {answer}")
    return lines


def capped(lines: list[str], csv_name: str) -> list[str]:
    """The first `MAX_LINES` answers, and where the rest are."""
    if len(lines) <= MAX_LINES:
        return lines
    return [*lines[:MAX_LINES], f"And {len(lines) - MAX_LINES} more in {csv_name}."]


def answer_of(group: pd.DataFrame, dimension: str, metric: str, mode: str, tolerance: float) -> str:
    """One group's levels against the most: the fewest level within the tolerance by the replicates' means, how
    likely it truly is, and the fewest that is with probability `SURE`; or that quality had not levelled off."""
    group = group.sort_values(dimension)
    most = group.iloc[-1]
    worse = -group.difference if mode == "max" else group.difference
    fewest = group[(worse <= tolerance).to_numpy()].iloc[0]
    head = f"the most {dimension} compared, {_level(most[dimension])}, scored {most['mean']:.3f} ({metric}); "
    if fewest[dimension] == most[dimension]:
        nearest = group.iloc[-2]
        answer = (
            f"{head}by the means no fewer came within {metric_amount(tolerance, metric)} of it "
            f"({_level(nearest[dimension])}, the nearest, is within with probability {nearest.p_within:.2f}): quality "
            f"was still rising at {_level(most[dimension])}, and more {dimension} may help"
        )
        if nearest.p_within > 1 - SURE:  # not surely outside either
            answer += f"; {_to_settle(group, float(worse.iloc[-2]) - tolerance, metric)}"
        return answer
    answer = (
        f"{head}{_level(fewest[dimension])} is the fewest within {metric_amount(tolerance, metric)} of it by the means "
        f"({fewest['mean']:.3f}), truly within with probability {fewest.p_within:.2f}"
    )
    sure = group[(group.p_within >= SURE).to_numpy()]
    if not len(sure):
        return (
            f"{answer}; none short of {_level(most[dimension])} is within with probability {SURE} or more: "
            f"{_to_settle(group, tolerance - float(worse[fewest.name]), metric)}"
        )
    if sure.iloc[0][dimension] != fewest[dimension]:
        return f"{answer}; {_level(sure.iloc[0][dimension])} is within with probability {sure.iloc[0].p_within:.2f}"
    return answer


def replicates_to_settle(margin: float, noise: float, have: int = 1, paired: bool = False) -> int | None:
    """The fewest replicates a level, more than the `have` it has and at most `MOST_REPLICATES`, that would put a
    gap `margin` away from the tolerance beyond doubt at probability `SURE`, with replicates whose standard
    deviation is `noise`, if the means hold (by the posterior `p_within` uses); None where even the most would not.
    `paired`: the levels are the same trials (milestones), `noise` the spread of each trial's own difference."""

    def settles(n: int) -> bool:
        quantile = scipy_stats.t.ppf(SURE, n - 1) if paired else difference_quantile(n)
        return quantile * noise / math.sqrt(n) <= abs(margin)

    low, high = max(2, have + 1), MOST_REPLICATES
    if low > high or not settles(high):
        return None
    while low < high:  # the spread needed shrinks as n grows: the first n that settles it, by bisection
        middle = (low + high) // 2
        low, high = (low, middle) if settles(middle) else (middle + 1, high)
    return low


@functools.lru_cache(maxsize=None)
def difference_quantile(n: int) -> float:
    """The `SURE` quantile of T - T' for two independent Student t's with n - 1 degrees: how many standard errors
    apart two means of n replicates each must lie to be told apart so, by the posterior of each mean
    (`stats.mean_posterior`); with 2 replicates, Cauchy's heavy tails make that 6.2, with many about 1.81. The
    distribution of the difference by numerical integration: P(T - T' <= x) = E[F(x + T')], with T' at evenly
    spaced quantiles (the midpoint rule over its probabilities: exact to about 1e-4 even for Cauchy's tails)."""
    t = scipy_stats.t(n - 1)
    others = t.ppf((np.arange(QUANTILE_POINTS) + 0.5) / QUANTILE_POINTS)
    return float(optimize.brentq(lambda x: t.cdf(x + others).mean() - SURE, 0.0, 100.0))


def _to_settle(group: pd.DataFrame, margin: float, metric: str) -> str:
    """How many replicates a level would settle the answer, at the replicate noise pooled over the group's levels
    (of paired levels, over their differences)."""
    usable = group.dropna(subset=["std"])
    dof = usable.n - 1
    noise = math.sqrt((dof * usable["std"] ** 2).sum() / dof.sum())
    paired = bool(group.get("paired", pd.Series(False, index=group.index)).any())
    needed = replicates_to_settle(margin, noise, int(group.n.max()), paired)
    spread = "each trial's difference from its last milestone" if paired else "these levels"
    at = f"at the replicate noise of {spread} ({metric_amount(noise, metric, '.2g')}) if the means hold"
    if needed is None:
        return f"the gap is too near the tolerance for even {MOST_REPLICATES} replicates a level to settle it, {at}"
    return f"about {needed} replicates a level would settle it, {at}"


def _groups(table: pd.DataFrame, others: Sequence[str], best_of: bool) -> Iterator[tuple[str, pd.DataFrame]]:
    """(where, rows) per value of `others`: where names the value, and each level's best configuration."""
    groups = table.groupby(list(others), sort=False, dropna=False) if others and len(table) else [((), table)]
    for keys, group in groups:
        if not len(group):
            continue
        keys = keys if isinstance(keys, tuple) else (keys,)
        values = ", ".join(f"{n}={k}" for n, k in zip(others, keys))
        where = f"at {values}" if values else ""
        if best_of:
            where = f"over each level's best configuration{f' {where}' if where else ''}"
        yield where, group



def _level(value: float) -> str:
    """A count as a whole number (a CSV may have read it as 18.0); a fraction of the pool as one (1.0: all of it)."""
    return f"{int(value)}" if float(value).is_integer() and value > 1 else repr(float(value))
