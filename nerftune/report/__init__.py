"""`nerftune report SWEEP_DIR`: what a sweep found, with its noise, as `SWEEP_DIR/report/` (index.html, PNG, CSV).

nerftune report sweeps/frames        # also written at the end of every sweep; works on a running sweep too

Reads the sweep's folder only (`data`); each section (`by_dimension`, `sections`, `scenes`, `view_novelty`,
`novel`, `novel_by_novelty`) computes with `stats` and `importance` and draws with `plots`; `page` writes the page.
Metrics are compared only where they are comparable: on trials that trained all their steps and scored the whole test
set at the end.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

import pandas as pd

from nerftune.cli import described
from nerftune.errors import InputError
from nerftune.growth import grew_replicates, grown_text, planned_trials
from nerftune.outcomes import is_error
from nerftune.report import sections, stats
from nerftune.report.answers import study_lines
from nerftune.report.by_dimension import dimension_sections
from nerftune.report.data import SweepData, load_sweep
from nerftune.report.novel import novel_views_section
from nerftune.report.novel_by_novelty import novel_by_novelty_sections
from nerftune.report.page import render_page
from nerftune.report.scenes import scenes_section
from nerftune.report.view_novelty import view_novelty_section

REPORT_DIR = "report"


def build_report(folder: Path, tolerance: float | None = None) -> Path:
    """Write the report of the sweep in `folder`; returns its index.html. `tolerance`: how much worse than the most
    frames (steps) tested is still enough, in the metric's units (default: the spec's, else `enough`'s)."""
    sweep = load_sweep(folder)
    out = Path(folder) / REPORT_DIR
    shutil.rmtree(out, ignore_errors=True)  # the report's own folder: no figure of an earlier run stays behind
    out.mkdir()
    trials, spec, metric = sweep.trials, sweep.spec, sweep.spec.metric.name
    page, title = out / "index.html", f"nerftune report: sweep {spec.name}"
    if not len(trials):  # a sweep just started, or whose every trial failed before it could write its folder
        page.write_text(render_page(title, _nothing_yet(sweep), [sections.provenance_section(sweep, out)]))
        return page
    final = stats.final_trials(trials)
    seeds = stats.seed_table(final, sweep.dimensions, metric) if len(final) else pd.DataFrame()
    noise = stats.pooled_std(seeds) if len(seeds) else math.nan
    gpu_share = sections.gpu_per_trial(sweep)
    parts = [
        *dimension_sections(sweep, final, out, tolerance),
        scenes_section(sweep, final, gpu_share, out),
        view_novelty_section(sweep, final, out),
        novel_views_section(sweep, out),
        *novel_by_novelty_sections(sweep, final, out),
        sections.curves_section(sweep, final, out, tolerance),
        sections.seed_section(sweep, seeds, noise, out),
        sections.time_section(sweep, final, out),
        sections.cost_section(sweep, gpu_share, out),
        sections.pareto_section(sweep, final, out),
        sections.importance_section(sweep, seeds, noise, out),
        sections.errors_section(trials, out),
        sections.provenance_section(sweep, out),
    ]
    trials.to_csv(out / "trials.csv", index=False)
    shown = [part for part in parts if part is not None]  # scenes: studies of several; novel views: once rendered
    page.write_text(render_page(title, _summary(sweep, final, tolerance), shown))
    return page


def _summary(sweep: SweepData, final: pd.DataFrame, tolerance: float | None = None) -> str:
    trials = sweep.trials
    counts = trials.stop_reason.map(lambda r: "errored" if is_error(r) else r).value_counts().to_dict()
    spec = sweep.spec
    replicates = f"{len(spec.replicate_values)} replicates ({spec.replicates}) per configuration" + (
        " that completed" if grew_replicates(sweep.state) else ""
    )
    replicates = (replicates if spec.replicates else "no replicates") + (
        f", {grown_text(sweep.state)}" if sweep.state.get("rounds") else ""
    )
    strata = f", strata: {' x '.join(spec.stratify)}" if spec.stratify else ""
    best = "".join(f"{line[0].upper()}{line[1:]}. " for line in study_lines(trials, spec, tolerance))
    return (
        f"{len(trials)} trials of {planned_trials(sweep.state, spec)} planned "
        f"({', '.join(f'{n} {reason}' for reason, n in sorted(counts.items()))}); {replicates}{strata}; "
        f"{len(final)} trials trained all their steps and scored the whole test set: the statistics rest on them. "
        f"{best}{_forced_warning(sweep.state)}Written {time.strftime('%Y-%m-%d %H:%M')}."
    )


def _nothing_yet(sweep: SweepData) -> str:
    from nerftune.console import LOG_FILE  # imports Ray's Tune: only on this rare page

    return (
        f"No trial of the {planned_trials(sweep.state, sweep.spec)} planned has recorded anything yet: a trial writes "
        f"its folder when it starts, so one that failed before (a worker that cannot import nerftune, say) is only in "
        f"{sweep.folder / LOG_FILE}. Written {time.strftime('%Y-%m-%d %H:%M')}."
    )


def _forced_warning(state: dict) -> str:
    """A resume over a changed spec or data puts two setups in one table: said first, detailed in Provenance."""
    forced = state.get("forced_resumes", [])
    if not forced:
        return ""
    return f"Warning: resumed with --force although {'; '.join(entry['over'] for entry in forced)} (see Provenance). "


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nerftune report", description=described(__doc__))
    parser.add_argument("sweep_dir", type=Path, help="a sweep's folder, e.g. sweeps/demo")
    parser.add_argument(
        "--within",
        type=float,
        metavar="X",
        help="how much worse than the most frames (steps) tested is still enough, in the metric's units "
        "(default: the spec's metric.tolerance, else 0.5 for PSNR in dB, 0.01 for SSIM, LPIPS and character "
        "error rate)",
    )
    args = parser.parse_args(argv)
    try:
        if args.within is not None and not args.within > 0:
            raise InputError("command line", "--within", f"is {args.within:g}; it must be positive", "e.g. 0.5")
        page = build_report(args.sweep_dir, args.within)
    except InputError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        return 2
    print(f"report: {page}")
    return 0
