"""The sections of quality against each dimension of the space: per level, the replicates' means with their
intervals, a figure, each level against the next (ordered dimensions) or against the best (unordered ones), and for
a dimension that costs more the more of it (frames, steps) how much of it is enough (`enough`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nerftune.dimensions import COSTLY_DIMENSIONS
from nerftune.outcomes import METRICS, metric_amount
from nerftune.report import stats
from nerftune.report.data import SweepData
from nerftune.report.enough import enough, tolerance_of
from nerftune.report.page import Section, csv_table
from nerftune.report.plots import plot_by_dimension
from nerftune.report.subset_spread import POOLED_NOTE, spread_note, subset_means, subset_spread
from nerftune.spec import FRAME_SUBSET, SCENE

P_BETTER = (
    "That probability takes each mean's uncertainty from its replicates by Student's t, as Welch's test does (a "
    "little more cautiously with 2 or 3 seeds): with so few seeds it stays well short of 1 unless the gap is many "
    "times the seed noise."
)


def _measured(final: pd.DataFrame) -> list[str]:
    return [m for m in METRICS if m in final and final[m].notna().any()]


def _numeric(sweep: SweepData) -> list[str]:
    """The ordered dimensions (drawn as curves, each level against the next); a frame subset is a name, not a size."""
    space = sweep.spec.configuration_space
    return [
        n
        for n, d in space.items()
        if n != FRAME_SUBSET and (d.values is None or all(isinstance(v, (int, float)) for v in d.values))
    ]


@dataclass(frozen=True)
class Levels:
    """One dimension's levels as its section compares them."""

    dimension: str
    final: pd.DataFrame  # the trials, or (frame subsets searched) each subset's seed mean
    others: list[str]  # the other dimensions, held fixed
    within: list[str]  # the study's other strata among them: never compared across
    searched: list[str]  # the rest: each level's best configuration is taken over them
    best_rows: pd.DataFrame | None  # the replicates of each level's best configuration (where any are searched)
    ordered: bool  # a number (a curve; each level against the next) or a name (each against the best)
    costly: bool  # frames, steps: with replicates, the section says how many are enough


def dimension_sections(
    sweep: SweepData, final: pd.DataFrame, out: Path, tolerance: float | None = None
) -> list[Section]:
    """`tolerance`: how much worse than the most frames (steps) tested is still enough (default: `enough`'s)."""
    sections = []
    numeric = _numeric(sweep)
    # searched frame subsets are draws of frames, not settings: every other dimension is compared over them
    pooling = FRAME_SUBSET in sweep.dimensions and len(final)
    pooled = subset_means(final, sweep.dimensions, _measured(final)) if pooling else None
    metric, mode = sweep.spec.metric.name, sweep.spec.metric.mode
    for dimension in [name for name in sweep.dimensions if name != SCENE]:  # scenes have a section of their own
        pooled_here = pooled is not None and dimension != FRAME_SUBSET
        rows = pooled if pooled_here else final
        others = [d for d in sweep.dimensions if d != dimension and not (pooled_here and d == FRAME_SUBSET)]
        section = Section(f"Quality against {dimension}")
        sections.append(section)
        if not sweep.spec.replicates:
            section.notes.append(
                "No replicates: every point is one seed, so there are no bands and no tests (add `replicates: seed` "
                "to the spec)."
            )
        if pooled_here:
            section.notes.append(POOLED_NOTE)
        if not len(rows) or rows[dimension].nunique() < 2:
            section.notes = [f"Fewer than two values of {dimension} have completed trials yet: nothing to compare."]
            continue
        # a level's best configuration is taken over the searched settings, never across the study's other strata
        within = [d for d in sweep.spec.stratify if d in others]
        searched = [d for d in others if d not in within]
        best_rows = stats.best_per_level(rows, dimension, metric, mode, within) if searched else None
        ordered = dimension in numeric
        costly = ordered and dimension in COSTLY_DIMENSIONS and bool(sweep.spec.replicates)
        levels = Levels(dimension, rows, others, within, searched, best_rows, ordered, costly)
        if _add_figures(section, levels, sweep, tolerance, out):  # a metric was measured: compare its levels
            _add_comparisons(section, levels, sweep, out)
            if costly:
                _add_enough(section, levels, sweep, tolerance, out)
        spread = subset_spread(rows, others, metric) if dimension == FRAME_SUBSET and sweep.spec.replicates else None
        if spread is not None and len(spread):  # which frames against which seed
            section.notes.append(spread_note(spread, others, metric))
            section.tables.append(csv_table(spread, "frame_subset_spread.csv", out))
    return sections


def _add_figures(section: Section, levels: Levels, sweep: SweepData, tolerance: float | None, out: Path) -> bool:
    """Per measured metric a figure and its table (by_<dimension>.csv); in a study stratified by this dimension with
    other settings searched, each level's best configuration is the curve. Whether any metric was measured."""
    dimension, final, others, within = levels.dimension, levels.final, levels.others, levels.within
    dim = sweep.spec.space[dimension]
    log_x = levels.ordered and (
        dim.log or (dim.values is not None and min(dim.values) > 0 and max(dim.values) / min(dim.values) > 100)
    )
    stratified = dimension in sweep.spec.stratify and bool(levels.searched)
    tables = []
    for measured in _measured(final):
        summary = stats.by_dimension(final, dimension, others, measured)
        summary.insert(0, "metric", measured)
        tables.append(summary)
        best = None
        if stratified:
            best = stats.by_dimension(levels.best_rows, dimension, within, measured)
            tables.append(best.assign(metric=measured, **{name: "(best per level)" for name in levels.searched}))
        figure = f"{measured}_by_{_slug(dimension)}.png"
        line = _enough_line(sweep, tolerance) if levels.costly and measured == sweep.spec.metric.name else None
        plot_by_dimension(
            summary, final, dimension, others, measured, out / figure, log_x, best, levels.ordered, within, line
        )
        section.figures.append(figure)
    if tables:
        section.tables.append(csv_table(pd.concat(tables, ignore_index=True), f"by_{_slug(dimension)}.csv", out))
    return bool(tables)


def _add_comparisons(section: Section, levels: Levels, sweep: SweepData, out: Path) -> None:
    """Each level against the next (ordered) or the best (unordered), under the same values of the other
    dimensions and as each level's best configuration over the searched ones (compare_<dimension>.csv)."""
    dimension, within, searched = levels.dimension, levels.within, levels.searched
    metric, mode = sweep.spec.metric.name, sweep.spec.metric.mode
    compare = stats.neighbour_levels if levels.ordered else stats.against_best_level
    compared = compare(levels.final, dimension, levels.others, metric, mode)
    if searched:  # and each level's best configuration against the next's, whatever its searched settings
        best = compare(levels.best_rows, dimension, within, metric, mode)
        compared = pd.concat([compared, best.assign(**{name: "(best per level)" for name in searched})])
    if len(compared):
        section.notes.append(
            f"Each level against the next ({metric}): difference of means, Welch's t-test p-value, and the "
            f"probability that the higher level is better (0.5: no idea; near 1 or 0: a difference). {P_BETTER}"
            if levels.ordered
            else f"Each level against the best one ({metric}, `to`): difference of means (the best's minus "
            "the level's), Welch's t-test p-value, and the probability that the best is better (0.5: no "
            f"idea; near 1: a difference). {P_BETTER}"
        )
        section.tables.append(csv_table(compared, f"compare_{_slug(dimension)}.csv", out))
    elif within:  # its levels completed only in different strata
        held = " and ".join(within)
        section.notes.append(
            f"No two levels of {dimension} completed with the same {held} (the study's strata): comparing "
            f"levels across them would credit {dimension} with what {held} did, so there is no comparison."
        )


def _add_enough(section: Section, levels: Levels, sweep: SweepData, tolerance: float | None, out: Path) -> None:
    """How many of a costly dimension are enough: the answers as notes, every level as a table."""
    metric, mode, dimension = sweep.spec.metric.name, sweep.spec.metric.mode, levels.dimension
    tolerance = tolerance_of(sweep.spec.metric, tolerance)
    table, lines = enough(
        levels.final, levels.best_rows, dimension, levels.others, levels.within, metric, mode, tolerance
    )
    if not len(table):
        return
    section.tables.append(csv_table(table, f"enough_{_slug(dimension)}.csv", out))
    section.notes += [
        f"How many {dimension} are enough: each level compared (2 replicates or more that trained all their steps) "
        f"against the most, and the probability that its true mean is no more than {metric_amount(tolerance, metric)} "
        f"worse (the spec's `metric: {{tolerance: X}}` or `nerftune report --within X` sets how much; the "
        "probability is computed as above).",
        *lines,
    ]
    if any("still rising" in line for line in lines):
        section.notes.append(
            f"To try more: add a larger value to `{dimension}` in the spec and rerun the same command; a grid study "
            f"that stratifies by {dimension}, or has no scheduler, grows by the added level (only its trials train)."
        )
    if any("would settle it" in line for line in lines):
        section.notes.append(
            f"To run those replicates: add values to `{sweep.spec.replicates}` in the spec and rerun the same command; "
            "the finished study grows by them (the configurations that completed get the added replicates, and only "
            "those trials train)."
        )


def _enough_line(sweep: SweepData, tolerance: float | None) -> tuple[float, str]:
    """The figure's dotted line: the tolerance under the most (over it, where lower is better), and its label."""
    tolerance = tolerance_of(sweep.spec.metric, tolerance)
    amount = metric_amount(tolerance, sweep.spec.metric.name)
    if sweep.spec.metric.mode == "max":
        return -tolerance, f"{amount} under the most: enough above"
    return tolerance, f"{amount} over the most: enough below"


def _slug(name: str) -> str:
    return name.rsplit(".", 1)[-1]

