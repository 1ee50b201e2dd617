"""The statistics of a study, on pandas tables, with no plotting: replicate means with confidence intervals, the
seed-noise floor, comparisons of neighbouring levels, time to near-final quality, cost, the Pareto front and
parameter importance.

`trials` is results.csv's table (one row per trial); `final` its rows that trained all their steps and scored the
whole test set at the end, the only ones whose metric is comparable. A configuration's replicates are its rows of
one `configuration` number.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from nerftune.outcomes import METRIC_RANGES, StopReason

CONFIDENCE = 0.95
POSTERIOR_DRAWS = 20000  # the probability's Monte Carlo error: about 0.004 at most


def final_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials whose metric is comparable: those that trained all their steps and scored the whole test set."""
    if not len(trials):
        return trials
    whole = trials.full_test.fillna(True).astype(bool) if "full_test" in trials else True
    return trials[(trials.stop_reason == StopReason.COMPLETED.value) & whole]


def interval(values: Sequence[float], metric: str = "") -> tuple[float, float, float]:
    """Mean and the two-sided 95 % Student-t confidence interval of the mean (NaN bounds for fewer than 2 values),
    cut to the values `metric` can take (an SSIM band never reaches above 1)."""
    values = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    lowest, highest = METRIC_RANGES.get(metric, (-math.inf, math.inf))
    return mean, max(mean - half, lowest), min(mean + half, highest)


def seed_table(final: pd.DataFrame, dimensions: Sequence[str], metric: str) -> pd.DataFrame:
    """Per configuration: its values, and n, mean, std, min, max and 95 % interval of the final metric."""
    rows = []
    for configuration, replicates in final.groupby("configuration", sort=True):
        values = replicates[metric].dropna().to_numpy(dtype=float)
        mean, low, high = interval(values, metric)
        rows.append(
            {
                "configuration": configuration,
                **{name: replicates[name].iloc[0] for name in dimensions},
                "n": len(values),
                "mean": mean,
                "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                "min": float(values.min()) if len(values) else math.nan,
                "max": float(values.max()) if len(values) else math.nan,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def pooled_std(seeds: pd.DataFrame) -> float:
    """The replicate standard deviation pooled over configurations (weights n - 1): the sweep's noise floor."""
    usable = seeds[seeds.n > 1]
    dof = (usable.n - 1).sum()
    return float(math.sqrt(((usable.n - 1) * usable["std"] ** 2).sum() / dof)) if dof else math.nan


def by_dimension(final: pd.DataFrame, dimension: str, others: Sequence[str], metric: str) -> pd.DataFrame:
    """The metric against one dimension: per value of the other dimensions and of this one, n, mean, interval."""
    rows = []
    for keys, group in final.groupby([*others, dimension], sort=True, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        mean, low, high = interval(group[metric], metric)
        rows.append(
            {
                **dict(zip([*others, dimension], keys)),
                "n": group[metric].notna().sum(),
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def neighbour_levels(
    final: pd.DataFrame, dimension: str, others: Sequence[str], metric: str, mode: str, seed: int = 0
) -> pd.DataFrame:
    """Each level of `dimension` against the next (per value of the other dimensions): the difference of means,
    Welch's t-test p-value and the probability that the higher level is better (`p_better`)."""

    def pairs(group: pd.DataFrame) -> list[tuple]:
        levels = sorted(group[dimension].dropna().unique())
        return list(zip(levels, levels[1:]))

    return _compare(final, dimension, others, metric, mode, pairs, seed)


def against_best_level(
    final: pd.DataFrame, dimension: str, others: Sequence[str], metric: str, mode: str, seed: int = 0
) -> pd.DataFrame:
    """Each level of an unordered `dimension` (a method, a pose source) against the level with the best mean (per
    value of the other dimensions): `to` is the best level, and `p_better` the probability that it is better."""

    def pairs(group: pd.DataFrame) -> list[tuple]:
        means = group.groupby(dimension)[metric].mean().dropna().sort_values(ascending=mode == "min")
        return [(level, means.index[0]) for level in means.index[1:]]

    return _compare(final, dimension, others, metric, mode, pairs, seed)


def _compare(
    final: pd.DataFrame,
    dimension: str,
    others: Sequence[str],
    metric: str,
    mode: str,
    pairs: Callable[[pd.DataFrame], list[tuple]],
    seed: int,
) -> pd.DataFrame:
    """Per value of the other dimensions, each (from, to) pair of levels that `pairs` picks: the difference of
    means (to - from), Welch's t-test p-value and the probability that `to` is better (`p_better`)."""
    rows, generator = [], np.random.default_rng(seed)
    groups = final.groupby(list(others), sort=True, dropna=False) if others else [((), final)]
    for keys, group in groups:
        keys = keys if isinstance(keys, tuple) else (keys,)
        for low, high in pairs(group):
            a = group.loc[group[dimension] == low, metric].dropna().to_numpy(float)
            b = group.loc[group[dimension] == high, metric].dropna().to_numpy(float)
            rows.append(
                {
                    **dict(zip(others, keys)),
                    "from": low,
                    "to": high,
                    "n_from": len(a),
                    "n_to": len(b),
                    "difference": b.mean() - a.mean() if len(a) and len(b) else math.nan,
                    "welch_p": welch_p(a, b),
                    "p_better": p_better(a, b, mode, generator),
                }
            )
    return pd.DataFrame(rows)


def best_per_level(
    final: pd.DataFrame, dimension: str, metric: str, mode: str, within: Sequence[str] = ()
) -> pd.DataFrame:
    """The replicates of each level's best configuration (by mean): what a study stratified by `dimension` keeps
    to the end, and the fair answer to "is this level better than that one?". `within`: dimensions held fixed (a
    study's other strata), the best of each level in each of their values: a level's best at 42 frames against
    another's at 18 would credit the level with what the frames did."""
    keys = [*within, dimension]
    means = final.groupby("configuration")[metric].mean()
    levels = final.drop_duplicates("configuration").set_index("configuration")[keys]
    ranked = means.sort_values(ascending=mode == "min")
    best = ranked.groupby([levels.loc[ranked.index, key] for key in keys], dropna=False).head(1).index
    return final[final.configuration.isin(best)]


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return math.nan
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def p_better(a: np.ndarray, b: np.ndarray, mode: str, generator: np.random.Generator) -> float:
    """The probability that b's true mean beats a's, given their replicates: each mean's posterior is Student's t
    about the replicates' mean, scaled by its standard error, with n - 1 degrees of freedom (the Behrens-Fisher
    problem with Jeffreys' prior; the Bayesian counterpart of Welch's test). With 2 or 3 seeds the t's tails are
    heavy: the demo's 6 against 42 frames, two seeds a side 3.1 dB apart that do not overlap, give 0.90, not the 1.0
    that resampling the replicates (a bootstrap) gives, since a bootstrap of 2 values never draws a mean outside
    them."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    draws_a, draws_b = (mean_posterior(values, generator) for values in (a, b))
    wins = draws_b > draws_a if mode == "max" else draws_b < draws_a
    return float(wins.mean() + 0.5 * (draws_b == draws_a).mean())


def mean_posterior(values: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """Draws of the true mean of `values` (2 or more): mean + standard error x Student's t (n - 1 degrees)."""
    error = values.std(ddof=1) / math.sqrt(len(values))
    return values.mean() + error * generator.standard_t(len(values) - 1, POSTERIOR_DRAWS)


def to_near_final(curves: pd.DataFrame, metric: str, mode: str, fraction: float = 0.95) -> pd.DataFrame:
    """Per trial: the first milestone (steps, training seconds) at which the metric came within `fraction` of its
    final value (at least `fraction` of it for a higher-is-better metric, at most 1/`fraction` of it otherwise)."""
    rows = []
    for trial_id, curve in curves.dropna(subset=[metric]).groupby("trial_id", sort=False):
        curve = curve.sort_values("step")
        final = curve[metric].iloc[-1]
        reached = curve[metric] >= fraction * final if mode == "max" else curve[metric] <= final / fraction
        first = curve[reached.to_numpy()].iloc[0]
        rows.append({"trial_id": trial_id, "steps_to_95": int(first.step), "seconds_to_95": first.get("train_s")})
    return pd.DataFrame(rows, columns=["trial_id", "steps_to_95", "seconds_to_95"])


TIME_COLUMNS = ("train_s", "steps_per_s", "setup_s", "eval_s", "wall_s", "steps_to_95", "seconds_to_95")


def training_time(final: pd.DataFrame, near: pd.DataFrame, dimensions: Sequence[str]) -> pd.DataFrame:
    """Per configuration: mean and standard deviation of each time, speed and time-to-95 %."""
    merged = final.merge(near, on="trial_id", how="left")
    rows = []
    for configuration, group in merged.groupby("configuration", sort=True):
        row = {"configuration": configuration, **{name: group[name].iloc[0] for name in dimensions}, "n": len(group)}
        for column in TIME_COLUMNS:
            values = pd.to_numeric(group[column], errors="coerce").dropna()
            row[f"{column}_mean"] = values.mean() if len(values) else math.nan
            row[f"{column}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def device_seconds(trials: pd.DataFrame, cpus: float, gpus: float) -> pd.Series:
    """What each trial cost: its wall seconds times the GPUs it held (on a GPU) or its CPU cores (on a CPU)."""
    on_gpu = trials.get("device", pd.Series("cpu", index=trials.index)).astype(str).str.startswith("cuda")
    units = np.where(on_gpu, gpus or 1.0, cpus)
    return pd.to_numeric(trials.wall_s, errors="coerce").fillna(0.0) * units


def pareto_front(points: pd.DataFrame, quality: str, cost: str, mode: str) -> pd.Series:
    """Whether each row is on the front: no other row is at least as good in both and better in one."""
    q = points[quality].to_numpy(float) * (1 if mode == "max" else -1)
    c = points[cost].to_numpy(float)
    front = []
    for i in range(len(points)):
        dominated = ((q >= q[i]) & (c <= c[i]) & ((q > q[i]) | (c < c[i]))).any()
        front.append(bool(math.isfinite(q[i]) and math.isfinite(c[i]) and not dominated))
    return pd.Series(front, index=points.index)


def effect_sizes(seeds: pd.DataFrame, dimensions: Sequence[str]) -> dict[str, float]:
    """Per dimension: the spread (max - min) of the mean metric over its values, averaging configuration means
    (a continuous dimension in quartiles): an effect in the metric's own units, comparable with the noise floor."""
    effects = {}
    for name in dimensions:
        column = seeds[name]
        if pd.api.types.is_numeric_dtype(column) and column.nunique() > 4:
            column = pd.qcut(column, 4, duplicates="drop")
        means = seeds.groupby(column, observed=True)["mean"].mean()
        effects[name] = float(means.max() - means.min()) if len(means) > 1 else math.nan
    return effects
