"""The report's figures as PNG files: a metric against a dimension, learning curves, and quality against time."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from nerftune.spec import value_text  # noqa: E402

DPI = 110


def settings_text(names: Sequence[str], values: Sequence) -> str:
    """Settings as a figure labels them: `hidden_dim=32, frames=42` (the last part of a dotted name)."""
    return ", ".join(f"{name.rsplit('.', 1)[-1]}={value_text(value)}" for name, value in zip(names, values))


def _label(others: Sequence[str], keys: tuple) -> str:
    return settings_text(others, keys) or "all"


def plot_by_dimension(
    summary: pd.DataFrame,
    final: pd.DataFrame,
    dimension: str,
    others: Sequence[str],
    metric: str,
    out: Path,
    log_x: bool = False,
    best: pd.DataFrame | None = None,
    ordered: bool = True,
    within: Sequence[str] = (),
    enough: tuple[float, str] | None = None,
) -> None:
    """Replicate mean and 95 % band per value of `dimension`, one line per value of the other dimensions, and every
    replicate as a point; `best` (each level's best configuration) as a black line, one per value of `within` (the
    study's other strata, each its own marker). An unordered dimension (a method, a pose source) has its levels side
    by side, each mean with its band as an error bar, and no lines. `enough`: (offset, label) of a dotted line at
    the curve's most level with 2 replicates or more, offset by the tolerance (the best line's, or the only one's)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    levels = sorted(set(summary[dimension].dropna()) | set(final[dimension].dropna()), key=None if ordered else str)
    groups = list(summary.groupby(list(others), sort=True, dropna=False)) if others else [((), summary)]
    slots = len(groups) + (best is not None)  # unordered: each group's points beside the others' at a level
    spread = 0.6 / slots

    def at(values: pd.Series, slot: int) -> pd.Series:
        return values if ordered else values.map(levels.index) + (slot - (slots - 1) / 2) * spread

    def draw(x: pd.Series, rows: pd.DataFrame, colour: str, style: str, label: str, band: float, **line) -> None:
        ax.plot(x, rows["mean"], style if ordered else style.lstrip("-"), color=colour, label=label, **line)
        if not rows["ci_low"].notna().any():
            return
        if ordered:
            ax.fill_between(x, rows["ci_low"], rows["ci_high"], color=colour, alpha=band, lw=0)
        else:
            below, above = (rows["mean"] - rows["ci_low"]).clip(lower=0), (rows["ci_high"] - rows["mean"]).clip(lower=0)
            ax.errorbar(x, rows["mean"], yerr=[below.fillna(0), above.fillna(0)], fmt="none", ecolor=colour, capsize=3)

    for index, (keys, group) in enumerate(groups):
        keys = keys if isinstance(keys, tuple) else (keys,)
        colour = f"C{index % 10}"
        group = group.sort_values(dimension)
        draw(at(group[dimension], index), group, colour, "-o", _label(others, keys), 0.18, markersize=4)
        mask = np.ones(len(final), dtype=bool)
        for name, value in zip(others, keys):
            mask &= (final[name] == value).to_numpy()
        points = final[mask]
        ax.scatter(at(points[dimension], index), points[metric], color=colour, s=12, alpha=0.7, marker="x")
    if best is not None:
        strata = list(best.groupby(list(within), sort=True, dropna=False)) if within else [((), best)]
        for number, (keys, rows) in enumerate(strata):
            keys = keys if isinstance(keys, tuple) else (keys,)
            rows = rows.sort_values(dimension)
            label = f"best per level ({_label(within, keys)})" if within else "best per level"
            marker = "sD^vo"[number % 5]
            draw(at(rows[dimension], slots - 1), rows, "black", f"-{marker}", label, 0.08, lw=2, markersize=5)
    reference = best if best is not None else summary
    if enough is not None and not within and (best is not None or not others):
        compared = reference[reference.n >= 2].sort_values(dimension)
        if len(compared) > 1:
            ax.axhline(compared["mean"].iloc[-1] + enough[0], color="dimgrey", ls=":", lw=1.2, label=enough[1])
    ax.set_xlabel(dimension)
    if not ordered:
        ax.set_xticks(range(len(levels)), [value_text(level) for level in levels], fontsize=8)
        ax.set_xlim(-0.5, len(levels) - 0.5)
    elif log_x:
        ax.set_xscale("log")
    ax.set_ylabel(f"test {metric}")
    ax.set_title(f"{metric} against {dimension.rsplit('.', 1)[-1]} (mean, 95 % band, replicates x)", fontsize=10)
    ax.grid(alpha=0.3)
    if len(ax.get_legend_handles_labels()[0]) > 1:
        ax.legend(fontsize=7)
    _save(fig, out)


def plot_learning_curves(
    curves: pd.DataFrame, trials: pd.DataFrame, dimensions: Sequence[str], metric: str, out: Path
) -> None:
    """The metric against step per configuration (mean over replicates, band from min to max), with an x where
    the scheduler stopped a configuration. Milestones scored on a subset of the test images (`eval.max_images`)
    make the line; the last, on the whole test set, is a dot, since the two are not the same measurement."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    stopped = set(trials.loc[trials.stop_reason == "asha_pruned", "configuration"])
    scored = curves.dropna(subset=[metric])
    whole = scored.full_test.fillna(True).astype(bool)
    thinned = scored[~whole] if (~whole).any() else scored
    for index, (configuration, group) in enumerate(thinned.groupby("configuration")):
        by_step = group.groupby("step")[metric].agg(["mean", "min", "max"]).reset_index()
        colour = f"C{index % 10}"
        values = trials[trials.configuration == configuration][list(dimensions)].iloc[0]
        label = f"{configuration}: {_label(dimensions, tuple(values))}"
        # a configuration scored at one step only (its trials' one milestone) is a point, not an invisible line
        marker = "o" if len(by_step) == 1 else None
        ax.plot(by_step.step, by_step["mean"], "-", marker=marker, color=colour, lw=1.2, markersize=5, label=label)
        ax.fill_between(by_step.step, by_step["min"], by_step["max"], color=colour, alpha=0.15, lw=0)
        if configuration in stopped:
            ax.plot(by_step.step.iloc[-1], by_step["mean"].iloc[-1], "x", color=colour, markersize=8, mew=2)
        ends = scored[whole & (scored.configuration == configuration)]
        if len(ends) and (~whole).any():
            ax.plot(ends.groupby("step")[metric].mean(), "o", color=colour, markersize=5)
    ax.set_xlabel("step")
    ax.set_ylabel(f"test {metric}")
    ax.set_title("learning curves (x: stopped by the scheduler; o: whole test set)", fontsize=10)
    ax.grid(alpha=0.3)
    if curves.configuration.nunique() <= 12:
        ax.legend(fontsize=7, ncol=2)
    _save(fig, out)


def plot_by_novelty(
    views: pd.DataFrame, bands: pd.DataFrame, labels: dict, metric: str, out: Path, kind: str = "test"
) -> None:
    """Every view's metric against its novelty (dots), per configuration of `labels`; a line through its bands'
    means (at the views' mean novelty in each band), its bar from the lowest seed's mean to the highest. `kind`:
    which views, test or novel."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for index, (configuration, label) in enumerate(labels.items()):
        colour = f"C{index % 10}"
        mine = views[views.configuration == configuration]
        ax.plot(mine.novelty, mine[metric], ".", color=colour, alpha=0.35, markersize=5)
        line = bands[bands.configuration == configuration].sort_values("novelty_mean")
        spread = [line["mean"] - line.seed_min, line.seed_max - line["mean"]]
        ax.errorbar(line.novelty_mean, line["mean"], yerr=spread, fmt="-o", color=colour, lw=1.2, markersize=4,
                    capsize=3, label=label)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"novelty of the {kind} view for the trial (0: a training camera's view)")
    ax.set_ylabel(f"{kind} {metric}")
    ax.set_title(f"{kind} views' {metric} by novelty (dots: views; line: mean per band, bars: its seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, out)


def plot_pareto(points: pd.DataFrame, quality: str, cost: str, metric: str, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.scatter(points[cost], points[quality], s=18, color="0.6", label="configurations")
    front = points[points.on_front].sort_values(cost)
    ax.plot(front[cost], front[quality], "-o", color="C3", markersize=5, label="Pareto front")
    for _, row in front.iterrows():
        ax.annotate(
            str(row.configuration), (row[cost], row[quality]), fontsize=7, xytext=(3, 3), textcoords="offset points"
        )
    ax.set_xlabel("mean training seconds")
    ax.set_ylabel(f"mean test {metric}")
    ax.set_title("quality against training time", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, out)


def plot_view_sheet(cells: list[list[tuple]], row_labels: list[str], column_labels: list[str], out: Path) -> None:
    """A grid of images: `cells[row][column]` is (image array or None, caption under it)."""
    rows, columns = len(cells), len(column_labels)
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns + 1.6, 1.75 * rows + 0.3), squeeze=False)
    for r, row in enumerate(cells):
        for c, (image, caption) in enumerate(row):
            ax = axes[r][c]
            if image is not None:
                ax.imshow(image)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(caption, fontsize=7)
            if r == 0:
                ax.set_title(column_labels[c], fontsize=8)
        axes[r][0].set_ylabel(row_labels[r], fontsize=7, rotation=0, ha="right", va="center")
    _save(fig, out)


def _save(fig, out: Path) -> None:
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
