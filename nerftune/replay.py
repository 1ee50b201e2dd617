"""`nerftune replay SWEEP_DIR --scheduler asha --grace-period G --reduction-factor R [--stratify DIM]`: what a
scheduler would have done to a finished sweep, from the learning curves it recorded.

nerftune replay sweeps/frames-grid --grace-period 2000 --reduction-factor 3 --stratify frames

Every configuration whose replicates all trained to the end (a grid with `eval.every`, typically) is fed, in the
order the sweep proposed them, to the same decisions the sweep's scheduler makes (`rung_book`): at each rung the
replicates' metric at the last evaluation at or before it. It prints what the scheduler would have trained (steps,
share of the full sweep) and whether it would have kept the best configuration, overall and in each stratum.
Choose scheduler settings before paying for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from nerftune.cli import described
from nerftune.errors import InputError
from nerftune.outcomes import StopReason
from nerftune.report.data import SweepData, load_sweep
from nerftune.rung_book import STOP, RungBook, stratum_of
from nerftune.schedule import rungs
from nerftune.spec import SchedulerSpec


def replay(sweep: SweepData, grace_period: int, reduction_factor: float, stratify: Sequence[str]) -> pd.DataFrame:
    """One row per replayable configuration: its values, final mean, target steps and the step the replayed
    scheduler would have stopped it at."""
    spec = sweep.spec
    asha = spec.model_copy(
        update={"scheduler": SchedulerSpec(grace_period=grace_period, reduction_factor=reduction_factor)}
    )
    milestones = [r for r in rungs(asha) if r < spec.max_steps]
    book = RungBook(milestones, len(spec.replicate_values), reduction_factor, spec.metric.mode)
    metric, trials, curves = spec.metric.name, sweep.trials, sweep.curves.dropna(subset=[spec.metric.name])
    rows = []
    for configuration, replicates in trials.groupby("configuration", sort=True):
        if not (replicates.stop_reason == StopReason.COMPLETED.value).all():
            continue
        stratum = stratum_of(replicates.iloc[0].to_dict(), stratify)
        target, stopped_at = int(replicates.target_steps.iloc[0]), None
        for rung in (r for r in milestones if r < target):
            for trial_id in replicates.trial_id:
                curve = curves[curves.trial_id == trial_id].sort_values("step")
                before = curve[curve.step <= rung]
                book.record(
                    str(configuration), stratum, trial_id, rung, (before if len(before) else curve)[metric].iloc[-1]
                )
            if book.verdict(str(configuration), rung) == STOP:
                stopped_at = rung
                break
        rows.append(
            {
                "configuration": configuration,
                **{name: replicates[name].iloc[0] for name in sweep.dimensions},
                "final_mean": replicates[f"final_{metric}"].mean(),
                "replicates": len(replicates),
                "target_steps": target,
                "replay_steps": stopped_at or target,
                "stratum": stratum,
            }
        )
    return pd.DataFrame(rows)


def left_out(trials: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """The line that says how many configurations the replay could not use, if any: the figures below are of the
    others only."""
    missing = trials.configuration.nunique() - len(table)
    if not missing:
        return []
    return [
        f"left out: {missing} configuration(s) whose replicates did not all train to the end (stopped by the sweep's "
        "scheduler, failed or unfinished); the figures below are of the other "
        f"{len(table)}: for a full replay, run the grid with `scheduler: {{type: none}}`"
    ]


def summary_lines(table: pd.DataFrame, mode: str, stratify: Sequence[str]) -> list[str]:
    trained = int((table.replay_steps * table.replicates).sum())
    full = int((table.target_steps * table.replicates).sum())
    lines = [f"steps trained: {trained} of {full} ({trained / full:.0%}; saves {1 - trained / full:.0%})"]
    best = table.loc[table.final_mean.idxmax() if mode == "max" else table.final_mean.idxmin()]
    kept = best.replay_steps == best.target_steps
    lines.append(f"best configuration overall ({best.configuration}, {best.final_mean:.4g}): {_kept(kept)}")
    if stratify:
        for stratum, group in table.groupby("stratum", sort=True):
            top = group.loc[group.final_mean.idxmax() if mode == "max" else group.final_mean.idxmin()]
            shown = ", ".join(f"{n}={v}" for n, v in zip(stratify, json.loads(stratum)))
            kept = _kept(top.replay_steps == top.target_steps)
            lines.append(f"best of {shown} ({top.configuration}, {top.final_mean:.4g}): {kept}")
    return lines


def _kept(kept: bool) -> str:
    return "kept to the last step" if kept else "STOPPED early: these settings would have lost it"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nerftune replay", description=described(__doc__))
    parser.add_argument("sweep_dir", type=Path, help="a finished sweep's folder, e.g. sweeps/frames")
    parser.add_argument("--scheduler", choices=["asha"], default="asha")
    parser.add_argument("--grace-period", type=int, required=True, help="steps before the first decision")
    parser.add_argument("--reduction-factor", type=float, default=2.0, help="keep 1 in this many at each rung")
    parser.add_argument("--stratify", action="append", default=[], help="a dimension never compared across")
    args = parser.parse_args(argv)
    try:
        sweep = load_sweep(args.sweep_dir)
        _check(sweep, args)
    except InputError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        return 2
    table = replay(sweep, args.grace_period, args.reduction_factor, args.stratify)
    if not len(table):
        print(
            f"error: {args.sweep_dir}: no configuration has all its replicates completed: nothing to replay",
            file=sys.stderr,
        )
        return 2
    print(table.drop(columns="stratum").to_string(index=False))
    for line in [*left_out(sweep.trials, table), *summary_lines(table, sweep.spec.metric.mode, args.stratify)]:
        print(line)
    return 0


def _check(sweep: SweepData, args: argparse.Namespace) -> None:
    folder = args.sweep_dir
    evaluated = sweep.curves.dropna(subset=[sweep.spec.metric.name]).groupby("trial_id").step.nunique()
    if not len(evaluated) or evaluated.max() < 2:
        raise InputError(
            folder,
            "SWEEP_DIR",
            "has no intermediate evaluations to replay",
            "run the sweep with `eval: {every: N}` (and `scheduler: {type: none}`) first",
        )
    for name in args.stratify:
        if name not in sweep.dimensions:
            raise InputError(
                folder,
                "--stratify",
                f"{name!r} is not a searched dimension of this sweep",
                f"choose from {', '.join(sweep.dimensions) or '(none)'}",
            )
    if not 1 <= args.grace_period <= sweep.spec.max_steps or args.reduction_factor <= 1:
        raise InputError(
            folder,
            "--grace-period",
            "needs 1 <= grace period <= the sweep's steps and a reduction factor > 1",
            f"the sweep trained {sweep.spec.max_steps} steps",
        )
