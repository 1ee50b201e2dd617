"""The report's test views by novelty: does a configuration render worse, or are its test views only farther from
what it trained on?

Every trial scores the same test views, but a trial on few frames sees them from farther away. Each trial's last
scoring of the whole test set (`test_view_scores.csv`) gives every view's metric beside its novelty for that trial
(0: a training camera's view, towards 1: far from all of them). Per configuration and band of novelty: the mean of
its replicates' means over the views in that band, with the seeds' 95 % interval; where two configurations have
views in the same band, they compare at the same distance from their cameras. Per trial: the slope of the metric
against novelty (a least squares line through its views), so a configuration's slope says how fast its quality
falls away from its cameras. And the test views hardest first: a view that is the worst of most trials is named.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from nerftune.report.data import SweepData
from nerftune.report.page import Section, csv_table
from nerftune.report.plots import plot_by_novelty, settings_text
from nerftune.report.stats import interval

BAND_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
SLOPE_UNIT = 0.1  # a slope is the metric's change over this much novelty
MIN_SLOPE_SPAN = 0.1  # a trial whose views' novelty spans less gives no slope: the line would be extrapolation
MAX_SHOWN = 12  # configurations in the page's table (the best by their mean); the CSV has every one
MAX_PLOTTED = 6


def view_novelty_section(sweep: SweepData, final: pd.DataFrame, out: Path) -> Section | None:
    views = last_scoring(sweep.view_scores, final, sweep.dimensions)
    metric = sweep.spec.metric.name if sweep.spec.metric.name in views else "psnr"
    if not len(views) or metric not in views or views[metric].isna().all():
        return None
    dimensions, lower_is_better = sweep.dimensions, sweep.spec.metric.mode == "min"
    bands = by_band(views, dimensions, metric)
    slopes = slopes_by_configuration(views, dimensions, metric)
    ranked = final.groupby("configuration")[metric].mean().sort_values(ascending=lower_is_better).index.tolist()
    ranked = [c for c in ranked if c in set(bands.configuration)]
    section = Section(f"Test views by novelty ({metric})")
    section.notes.append(
        f"Every trial scores the same test views, but a trial on fewer frames sees them from farther away. Each "
        f"view's {metric} at the trial's last scoring, against its novelty for that trial (0: a training camera's "
        f"view, towards 1: far from all of them, as `nerftune render` scores novel views), in bands of novelty: per "
        f"configuration, the mean over its seeds of each seed's mean in that band, with the seeds' 95 % interval in "
        f"brackets (none with one seed). Where two configurations have views in the same band they compare at the "
        f"same distance from their training cameras (if not always on the same views): one ahead overall only "
        f"because its test views lie nearer its cameras is not ahead there."
    )
    section.notes.append(_slope_line(views, metric, lower_is_better))
    add_bands(section, views, (bands, slopes), ranked, dimensions, metric, out / f"{metric}_by_novelty")
    hardest = hardest_views(views, metric, lower_is_better)
    section.notes.append(_hardest_line(hardest, metric))
    name, _ = csv_table(hardest, f"{metric}_by_test_view.csv", out)
    section.tables.append((name, hardest.head(MAX_SHOWN)))
    return section


def add_bands(
    section: Section,
    views: pd.DataFrame,
    bands_and_slopes: tuple[pd.DataFrame, pd.DataFrame],
    ranked: list,
    dimensions: list[str],
    metric: str,
    stem: Path,
    kind: str = "test",
) -> None:
    """Add to `section` the figure of the views by novelty (`stem`.png, the first MAX_PLOTTED configurations of
    `ranked`, best first), every band and slope (`stem`.csv) and the page's table of the first MAX_SHOWN."""
    bands, slopes = bands_and_slopes
    figure = f"{stem.name}.png"
    shown = ranked[:MAX_PLOTTED]
    labels = {c: configuration_text(bands, c, dimensions) for c in shown}
    plot_by_novelty(views[views.configuration.isin(shown)], bands, labels, metric, stem.parent / figure, kind)
    section.figures.append(figure)
    if len(ranked) > MAX_PLOTTED:
        section.notes.append(f"{figure}: the best {MAX_PLOTTED} of {len(ranked)} configurations; the tables have more.")
    both = bands.merge(slopes, on=["configuration", *dimensions], how="left")
    name, _ = csv_table(both, f"{stem.name}.csv", stem.parent)
    section.tables.append((name, band_table(bands, slopes, ranked[:MAX_SHOWN], dimensions)))


def hardest_views(views: pd.DataFrame, metric: str, lower_is_better: bool) -> pd.DataFrame:
    """Per test view, worst first: the trials that scored it, its mean metric over them, its novelty's range, in
    how many of them it was the trial's worst view, and in how many it lay outside the training trajectory."""
    scored = views.dropna(subset=[metric])
    worst_rank = scored.groupby("trial_id")[metric].rank(ascending=not lower_is_better, method="min") == 1
    outside = scored.label == "outside" if "label" in scored else False
    table = scored.assign(worst=worst_rank, outside=outside).groupby("view").agg(
        trials=("trial_id", "nunique"),
        mean=(metric, "mean"),
        novelty_min=("novelty", "min"),
        novelty_max=("novelty", "max"),
        worst_in=("worst", "sum"),
        outside_in=("outside", "sum"),
    )
    return table.sort_values("mean", ascending=not lower_is_better).reset_index()


def _hardest_line(hardest: pd.DataFrame, metric: str) -> str:
    """Names the views that are the worst of most trials: one outside the training trajectory (extrapolated) is hard
    by nature; one within it that every model gets wrong may be a poor frame (motion blur, glare, a bad pose)."""
    flagged = hardest[hardest.worst_in * 2 > hardest.trials]
    text = (
        f"Test views, the hardest first (the page shows {MAX_SHOWN}, {metric}_by_test_view.csv all): each view's "
        f"mean over the trials, its novelty's range over them, in how many it was the trial's worst view and in "
        f"how many it lay outside the training trajectory (`nerftune render`'s label: farther off the document's "
        f"normal than the training cameras at its azimuth, or on a side none saw: extrapolated)."
    )
    if not len(flagged):
        return text + " No view is the worst of most trials."
    named = "; ".join(
        f"{row.view} in {row.worst_in} of {row.trials} trials (novelty {row.novelty_min:.2f} to {row.novelty_max:.2f}, "
        + ("outside the training trajectory: extrapolated" if row.outside_in * 2 > row.trials else "within it")
        + ")"
        for row in flagged.itertuples()
    )
    return (
        f"{text} The worst view of most trials: {named}. An extrapolated view is hard by nature; one within the "
        f"trajectory that nearly every model gets wrong may be a poor frame (motion blur, glare, a pose SfM got "
        f"wrong): look at it, and leave it out of the test set (a split_indices.json) if so."
    )


def last_scoring(view_scores: pd.DataFrame, final: pd.DataFrame, dimensions: list[str]) -> pd.DataFrame:
    """The views of the trials in `final` at each one's last scoring of the whole test set, with the trial's
    configuration and settings."""
    if not len(view_scores) or not len(final):
        return pd.DataFrame(columns=["trial_id", "configuration", *dimensions, "novelty"])
    last = view_scores[view_scores.step == view_scores.groupby("trial_id").step.transform("max")]
    return last.merge(final[["trial_id", "configuration", *dimensions]], on="trial_id")


def band_of(novelty: pd.Series) -> pd.Series:
    labels = [f"{a:g} to {b:g}" for a, b in zip(BAND_EDGES, BAND_EDGES[1:])]
    return pd.cut(novelty, list(BAND_EDGES), labels=labels, include_lowest=True).astype(str)


def by_band(views: pd.DataFrame, dimensions: list[str], metric: str) -> pd.DataFrame:
    """Per configuration and band: views, seeds, the views' mean novelty, and the metric's mean over seeds (each
    seed's mean over its views in the band) with its interval."""
    views = views.assign(band=band_of(views.novelty))
    rows = []
    for (configuration, band), group in views.groupby(["configuration", "band"], sort=True):
        per_seed = group.groupby("trial_id")[metric].mean()
        mean, low, high = interval(per_seed.to_numpy(float), metric)
        rows.append(
            {
                "configuration": configuration,
                **{name: group[name].iloc[0] for name in dimensions},
                "band": band,
                "novelty_mean": float(group.novelty.mean()),
                "views": len(group),
                "seeds": len(per_seed),
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
                "seed_min": float(per_seed.min()),
                "seed_max": float(per_seed.max()),
            }
        )
    return pd.DataFrame(rows)


def trial_slope(novelty: np.ndarray, values: np.ndarray) -> float:
    """The least-squares slope of the metric against novelty, per SLOPE_UNIT; NaN where the views span too little."""
    keep = np.isfinite(values)
    novelty, values = novelty[keep], values[keep]
    if len(values) < 3 or np.ptp(novelty) < MIN_SLOPE_SPAN:
        return math.nan
    return float(np.polyfit(novelty, values, 1)[0] * SLOPE_UNIT)


def trial_slopes(views: pd.DataFrame, metric: str) -> pd.Series:
    """Each trial's slope (see `trial_slope`), by trial_id."""
    return views.groupby("trial_id").apply(
        lambda t: trial_slope(t.novelty.to_numpy(float), t[metric].to_numpy(float)), include_groups=False
    )


def slopes_by_configuration(views: pd.DataFrame, dimensions: list[str], metric: str) -> pd.DataFrame:
    """Per configuration: its seeds' slopes, their mean and interval."""
    slopes = trial_slopes(views, metric)
    rows = []
    for configuration, group in views.groupby("configuration", sort=True):
        mine = slopes[group.trial_id.unique()].dropna()
        mean, low, high = interval(mine.to_numpy(float))
        rows.append(
            {
                "configuration": configuration,
                **{name: group[name].iloc[0] for name in dimensions},
                "slope_seeds": len(mine),
                "slope": mean,
                "slope_ci_low": low,
                "slope_ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def _slope_line(views: pd.DataFrame, metric: str, lower_is_better: bool) -> str:
    slopes = trial_slopes(views, metric).dropna()
    if not len(slopes):
        return (
            f"No trial's test views spread over {MIN_SLOPE_SPAN:g} of novelty or more: no slope of {metric} against "
            f"novelty (the bands still compare)."
        )
    worse = int((slopes > 0).sum() if lower_is_better else (slopes < 0).sum())
    return (
        f"Slope: the change of {metric} over {SLOPE_UNIT:g} more novelty within a trial (a least-squares line through "
        f"its test views, where they span at least {MIN_SLOPE_SPAN:g} of novelty); per configuration, its seeds' mean "
        f"and interval. Over the {len(slopes)} trials with one: median {slopes.median():.3g} (from "
        f"{slopes.min():.3g} to {slopes.max():.3g}); {metric} was worse on the more novel views in {worse} of them."
    )


def configuration_text(table: pd.DataFrame, configuration: int, dimensions: list[str]) -> str:
    row = table[table.configuration == configuration].iloc[0]
    return settings_text(dimensions, [row[name] for name in dimensions]) or "all"


def band_table(bands: pd.DataFrame, slopes: pd.DataFrame, shown: list, dimensions: list[str]) -> pd.DataFrame:
    """A row per configuration (best first), a column per band: `mean [low, high]` (n views)."""
    cells = bands.assign(cell=[_cell(r.mean, r.ci_low, r.ci_high) + f" ({r.views})" for r in bands.itertuples()])
    table = cells.pivot(index="configuration", columns="band", values="cell").reindex(shown).fillna("")
    slope = slopes.set_index("configuration").reindex(shown)
    table[f"slope per {SLOPE_UNIT:g}"] = [_cell(r.slope, r.slope_ci_low, r.slope_ci_high) for r in slope.itertuples()]
    settings = bands.drop_duplicates("configuration").set_index("configuration").reindex(shown)[dimensions]
    return pd.concat([settings, table], axis=1).reset_index(drop=True)


def _cell(mean: float, low: float, high: float) -> str:
    if not math.isfinite(mean):
        return ""
    return f"{_number(mean)} [{_number(low)}, {_number(high)}]" if math.isfinite(low) else _number(mean)


def _number(value: float) -> str:
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"  # PSNR to 0.01 dB, SSIM and slopes to 3 digits
