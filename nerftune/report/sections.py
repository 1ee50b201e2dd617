"""The report's sections, one function each: what it computes (with `stats` and `importance`), the figures (`plots`)
and the tables (kept as CSV beside the page). `build_report` puts them in order; the sections of quality against
each dimension are in `by_dimension`, the scenes section in `scenes`."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from nerftune.growth import growth_records
from nerftune.outcomes import StopReason, is_error, metric_amount
from nerftune.report import stats
from nerftune.report.data import SweepData
from nerftune.report.enough import capped, enough_lines, tolerance_of
from nerftune.report.importance import importance_table
from nerftune.report.noise import noise_by_level, noise_lines
from nerftune.report.page import Section, csv_table
from nerftune.report.plots import plot_learning_curves, plot_pareto
from nerftune.report.steps_enough import STEPS, steps_from_curves


def curves_section(sweep: SweepData, final: pd.DataFrame, out: Path, tolerance: float | None = None) -> Section:
    """The learning curves and, with replicates, how many steps are enough by them (`tolerance`: `enough`'s)."""
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
    if sweep.spec.replicates and not sweep.spec.finetune:  # a fine-tuning stage scores other images: no one curve
        section.notes.extend(_steps_enough_notes(sweep, final, out, tolerance))
    return section


def _steps_enough_notes(sweep: SweepData, final: pd.DataFrame, out: Path, tolerance: float | None) -> list[str]:
    """How many steps are enough, read off the curves where their milestones scored the whole test set."""
    metric, mode, dimensions = sweep.spec.metric.name, sweep.spec.metric.mode, sweep.dimensions
    tolerance = tolerance_of(sweep.spec.metric, tolerance)
    table = steps_from_curves(sweep.curves, final, dimensions, metric, mode, tolerance)
    if not len(table) or table.steps.nunique() < 2:
        thinned = sweep.spec.eval.max_images
        if not thinned or STEPS in dimensions:
            return []
        return [
            f"With `eval: {{max_images: 0}}` (every milestone scoring the whole test set, not {thinned} of its "
            "images) the curves would also tell how many steps are enough."
        ]
    csv_table(table, "enough_steps_by_milestone.csv", out)
    return [
        "How many steps are enough, from the curves: per configuration, each milestone at which its replicates "
        "scored the whole test set against the last, within each trial (a seed's own luck, shared by both, "
        "cancels), and the probability that the trials' mean difference is truly no more than "
        f"{metric_amount(tolerance, metric)} worse (a milestone at step s stands for a trial of s steps: nerfstudio's "
        "schedules follow the step, not the run's length); every milestone in enough_steps_by_milestone.csv.",
        *capped(enough_lines(table, STEPS, dimensions, metric, mode, tolerance), "enough_steps_by_milestone.csv"),
    ]


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
    listed = [name for name, dimension in sweep.spec.configuration_space.items() if dimension.values is not None]
    by_level = noise_by_level(seeds, listed)  # a searched range has as many levels as configurations: not those
    if len(by_level):  # does the seed matter more at some levels (at few frames, say)?
        section.notes += noise_lines(by_level, sweep.spec.metric.name, name)
        section.tables.append(csv_table(by_level, "noise_by_level.csv", out))
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
    values.update(growth_records(state))
    table = pd.DataFrame({"what": list(values), "value": [str(v) for v in values.values()]})
    section = Section("Provenance", tables=[csv_table(table, "provenance.csv", out)])
    if forced:
        section.notes.append(
            "Resumed with --force over a changed spec or changed data: the trials that ran before and after "
            "may not be comparable. The spec hash above is that of the spec it last resumed on; the test and data "
            "hashes, those it started with."
        )
    return section


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}, the scheduler saved {1 - part / whole:.0%}" if whole else "n/a"
