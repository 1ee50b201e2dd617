"""The report's sections, one function each: what it computes (with `stats` and `importance`), the figures (`plots`)
and the tables (kept as CSV beside the page). `build_report` puts them in order; the scenes section is in `scenes`."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from nerftune.outcomes import METRICS, StopReason, is_error
from nerftune.report import stats
from nerftune.report.data import SweepData
from nerftune.report.importance import importance_table
from nerftune.report.page import Section, csv_table
from nerftune.report.plots import plot_by_dimension, plot_learning_curves, plot_pareto
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


def dimension_sections(sweep: SweepData, final: pd.DataFrame, out: Path) -> list[Section]:
    sections = []
    no_bands = (
        []
        if sweep.spec.replicates
        else [
            "No replicates: every point is one seed, so there are no bands and "
            "no tests (add `replicates: seed` to the spec)."
        ]
    )
    numeric = _numeric(sweep)
    # searched frame subsets are draws of frames, not settings: every other dimension is compared over them
    pooling = FRAME_SUBSET in sweep.dimensions and len(final)
    pooled = subset_means(final, sweep.dimensions, _measured(final)) if pooling else None
    whole = final
    for dimension in [name for name in sweep.dimensions if name != SCENE]:  # scenes have a section of their own
        ordered = dimension in numeric
        pooled_here = pooled is not None and dimension != FRAME_SUBSET
        final = pooled if pooled_here else whole  # from here on: the trials, or the subsets' means
        others = [d for d in sweep.dimensions if d != dimension and not (pooled_here and d == FRAME_SUBSET)]
        section = Section(f"Quality against {dimension}", notes=list(no_bands))
        sections.append(section)
        if pooled_here:
            section.notes.append(POOLED_NOTE)
        if not len(final) or final[dimension].nunique() < 2:
            section.notes = [f"Fewer than two values of {dimension} have completed trials yet: nothing to compare."]
            continue
        dim = sweep.spec.space[dimension]
        log_x = ordered and (
            dim.log or (dim.values is not None and min(dim.values) > 0 and max(dim.values) / min(dim.values) > 100)
        )
        tables = []
        # a level's best configuration is taken over the searched settings, never across the study's other strata
        within = [d for d in sweep.spec.stratify if d in others]
        searched = [d for d in others if d not in within]
        metric, mode = sweep.spec.metric.name, sweep.spec.metric.mode
        best_rows = stats.best_per_level(final, dimension, metric, mode, within) if searched else None
        # stratified by this dimension with other settings searched: each level's best configuration is the curve
        stratified = dimension in sweep.spec.stratify and bool(searched)
        for measured in _measured(final):
            summary = stats.by_dimension(final, dimension, others, measured)
            summary.insert(0, "metric", measured)
            tables.append(summary)
            best = None
            if stratified:
                best = stats.by_dimension(best_rows, dimension, within, measured)
                tables.append(best.assign(metric=measured, **{name: "(best per level)" for name in searched}))
            figure = f"{measured}_by_{_slug(dimension)}.png"
            plot_by_dimension(summary, final, dimension, others, measured, out / figure, log_x, best, ordered, within)
            section.figures.append(figure)
        if tables:
            section.tables.append(csv_table(pd.concat(tables, ignore_index=True), f"by_{_slug(dimension)}.csv", out))
            compare = stats.neighbour_levels if ordered else stats.against_best_level
            compared = compare(final, dimension, others, metric, mode)
            if searched:  # and each level's best configuration against the next's, whatever its searched settings
                best = compare(best_rows, dimension, within, metric, mode)
                compared = pd.concat([compared, best.assign(**{name: "(best per level)" for name in searched})])
            if len(compared):
                section.notes.append(
                    f"Each level against the next ({metric}): difference of means, Welch's t-test p-value, and the "
                    f"probability that the higher level is better (0.5: no idea; near 1 or 0: a difference). {P_BETTER}"
                    if ordered
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
        spread = subset_spread(final, others, metric) if dimension == FRAME_SUBSET and sweep.spec.replicates else None
        if spread is not None and len(spread):  # which frames against which seed
            section.notes.append(spread_note(spread, others, metric))
            section.tables.append(csv_table(spread, "frame_subset_spread.csv", out))
    return sections


def curves_section(sweep: SweepData, out: Path) -> Section:
    metric, curves = sweep.spec.metric.name, sweep.curves
    section = Section("Learning curves")
    if not len(curves) or curves[metric].isna().all():
        section.notes.append("No milestone reported yet.")
        return section
    plot_learning_curves(curves, sweep.trials, sweep.dimensions, metric, out / "learning_curves.png")
    section.figures.append("learning_curves.png")
    thinned = sweep.spec.eval.max_images
    if thinned and (~curves.full_test.fillna(True).astype(bool)).any():  # the plot's dots stand apart from lines
        section.notes.append(
            f"Intermediate milestones (lines) score {thinned} of the test images; each trial's last one (dots) all."
        )
    csv_table(curves, "curves.csv", out)
    section.notes.append("Every milestone of every trial: curves.csv.")
    return section


def noise_name(sweep: SweepData) -> str:
    """What the replicates' spread is: seed noise, or (with `replicates: frame_subset`, say) the noise over that."""
    replicates = sweep.spec.replicates
    return "seed noise" if replicates in (None, "seed") else f"noise over {replicates}"


def seed_section(sweep: SweepData, seeds: pd.DataFrame, noise: float, out: Path) -> Section:
    name = noise_name(sweep)
    section = Section(f"{name[0].upper()}{name[1:]}: the final metric per configuration")
    if not len(seeds):
        section.notes.append("No configuration has completed yet.")
        return section
    if math.isfinite(noise):
        section.notes.append(
            f"Noise floor: the replicate standard deviation pooled over configurations is {noise:.3g} "
            f"({sweep.spec.metric.name}). Differences smaller than this are {name} until shown otherwise."
        )
    elif not sweep.spec.replicates:
        section.notes.append(
            "No replicates: each configuration ran with one seed, so seed noise is unknown; there are no bands and no "
            "tests (add `replicates: seed` to the spec)."
        )
    else:
        section.notes.append(f"No configuration has two completed replicates yet: {name} is unknown.")
    section.tables.append(csv_table(seeds, "seeds.csv", out))
    return section


def time_section(sweep: SweepData, final: pd.DataFrame, out: Path) -> Section:
    section = Section("Training time per configuration")
    if not len(final):
        section.notes.append("No configuration has completed yet.")
        return section
    curves = sweep.curves[sweep.curves.trial_id.isin(final.trial_id)]
    near = stats.to_near_final(curves, sweep.spec.metric.name, sweep.spec.metric.mode)
    timing = stats.training_time(final, near, sweep.dimensions)
    section.notes.append(
        "Mean and standard deviation over replicates: training, setup and evaluation seconds, steps per second, "
        "and the steps and training seconds to reach 95 % of the final metric (at the milestones evaluated)."
    )
    section.tables.append(csv_table(timing, "timing.csv", out))
    return section


def gpu_per_trial(sweep: SweepData) -> float:
    """The GPU share each trial held: the spec's, or what `gpu: auto` chose (kept in the state file)."""
    share = sweep.spec.resources.gpu
    return float(sweep.state.get("gpu_per_trial") or 1.0) if share == "auto" else share


def cost_section(sweep: SweepData, gpu_share: float, out: Path) -> Section:
    trials, spec = sweep.trials, sweep.spec
    section = Section("Compute cost")
    if not len(trials):
        section.notes.append("No trial has started yet.")
        return section
    costs = trials[["trial_id", "configuration", "steps_done", "target_steps", "wall_s"]].copy()
    costs["device_s"] = stats.device_seconds(trials, spec.resources.cpu, gpu_share)
    per_configuration = costs.groupby("configuration", as_index=False)[["device_s", "steps_done"]].sum()
    # what the scheduler saved, over the trials that ended: an unfinished one (an interrupted sweep's) may go on
    ended = (trials.stop_reason != StopReason.UNFINISHED.value).to_numpy()
    trained, planned = int(costs.steps_done[ended].sum()), int(costs.target_steps[ended].sum())
    which = "these trials" if ended.all() else f"the {int(ended.sum())} trials that ended"
    parts = []
    if ended.any():
        saved = _share(trained, planned)
        parts.append(
            f"{trained} steps trained of the {planned} {which} would have trained without early stopping ({saved})"
        )
    if not ended.all():
        unfinished = int((~ended).sum())
        so_far = int(costs.steps_done[~ended].sum())
        parts.append(f"{unfinished} unfinished trial{'s' if unfinished != 1 else ''} ({so_far} steps so far)")
    unit = "GPU" if trials.get("device", pd.Series(dtype=str)).astype(str).str.startswith("cuda").any() else "CPU-core"
    section.notes.append(f"Whole sweep: {costs.device_s.sum():.0f} {unit}-seconds; {'; '.join(parts)}.")
    renders = sweep.renders.dropna(subset=["fps"])
    if len(renders):
        per_view = 1.0 / renders.fps.clip(lower=1e-9)
        section.notes.append(
            f"Novel views: {int(renders.views.sum())} rendered at {per_view.mean():.3g} s per view on average."
        )
    section.tables.append(csv_table(per_configuration, "cost_per_configuration.csv", out))
    csv_table(costs, "cost_per_trial.csv", out)
    section.notes.append("Per trial: cost_per_trial.csv.")
    return section


def pareto_section(sweep: SweepData, final: pd.DataFrame, out: Path) -> Section:
    metric, mode = sweep.spec.metric.name, sweep.spec.metric.mode
    section = Section("Quality against training time (Pareto front)")
    if not len(final):
        section.notes.append("No configuration has completed yet.")
        return section
    points = final.groupby("configuration", as_index=False).agg(
        **{metric: (metric, "mean"), "train_s": ("train_s", "mean")}
    )
    points["on_front"] = stats.pareto_front(points, metric, "train_s", mode)
    plot_pareto(points, metric, "train_s", metric, out / "pareto.png")
    section.figures.append("pareto.png")
    section.tables.append(csv_table(points[points.on_front], "pareto.csv", out))
    return section


def importance_section(sweep: SweepData, seeds: pd.DataFrame, noise: float, out: Path) -> Section:
    section = Section("Parameter importance")
    table, how = importance_table(seeds, sweep.spec, noise)
    section.notes.append(how)
    trials = sweep.trials
    stopped = trials[trials.stop_reason == StopReason.PRUNED.value].configuration.nunique() if len(trials) else 0
    if len(table) and stopped:
        section.notes.append(
            f"The scheduler stopped {stopped} configuration(s) early, so these shares rank only those it let finish: "
            "a parameter whose weak values it stopped can look less important here than it is."
        )
    if len(table):
        below = table[table.above_noise == False].parameter.tolist()  # noqa: E712 (None: unknown)
        if below:
            section.notes.append(f"Not distinguishable from {noise_name(sweep)}: {', '.join(below)}.")
        section.tables.append(csv_table(table, "importance.csv", out))
    return section


def errors_section(trials: pd.DataFrame, out: Path) -> Section:
    section = Section("Errored trials")
    errored = trials[trials.stop_reason.map(is_error)] if len(trials) else trials
    if len(errored):
        section.notes.append("Left out of every statistic above.")
        section.tables.append(
            csv_table(errored[["trial_id", "configuration", "steps_done", "stop_reason"]], "errors.csv", out)
        )
    else:
        section.notes.append("None.")
    return section


def provenance_section(sweep: SweepData, out: Path) -> Section:
    state = sweep.state
    values = {
        "spec": state.get("spec_path"),
        "spec_hash": state.get("spec_hash"),
        "started": state.get("started"),
        "finished": state.get("finished", "(not yet)"),
        **state.get("provenance", {}),
    }
    forced = state.get("forced_resumes", [])
    values.update({f"resumed with --force, {entry['at']}": entry["over"] for entry in forced})
    table = pd.DataFrame({"what": list(values), "value": [str(v) for v in values.values()]})
    section = Section("Provenance", tables=[csv_table(table, "provenance.csv", out)])
    if forced:
        section.notes.append(
            "Resumed with --force over a changed spec or changed data: the trials that ran before and after "
            "may not be comparable. The spec, test and data hashes above are those the sweep started with."
        )
    return section


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}, the scheduler saved {1 - part / whole:.0%}" if whole else "n/a"


def _slug(name: str) -> str:
    return name.rsplit(".", 1)[-1]
