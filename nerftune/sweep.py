"""`python -m nerftune.sweep SPEC.yaml`: validate, then run (or resume) the sweep on Ray Tune and write its results.

python -m nerftune.sweep search_spaces/demo.yaml --dry-run     # the plan, nothing started
python -m nerftune.sweep search_spaces/demo.yaml               # run, or resume an interrupted run
python -m nerftune.sweep search_spaces/demo.yaml --address auto  # on a running Ray cluster

The path of a sweep, in the order of this file: check everything (`preflight`), decide whether to resume (`state`),
or to grow a finished study by values added to its spec (`growth`), print the plan (`plan`), with `gpu: auto`
measure the packing (`gpu_auto`), open the sweep's MLflow run (`tracking`), run the trials on Ray Tune (`tuner`: the
searcher in `search`, the scheduler in `schedule`, one trial in `trainable`; then each round that grew it) with a
live view (`console`), write results.csv (`results`), render the best trials (`novel_views`), close the MLflow run
and print the table. Heavy libraries are imported only once a sweep really
starts, so that bad input and --dry-run answer at once.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from nerftune.cli import described
from nerftune.cluster_check import check_cluster, check_machine
from nerftune.cpu_training_time import cpu_training_warning
from nerftune.errors import InputError
from nerftune.outcomes import StopReason
from nerftune.gpu_auto import measure_packing
from nerftune.plan import describe_plan, source_name, training_text
from nerftune.preflight import Prepared, prepare
from nerftune.results import RESULTS_FILE, best_row
from nerftune.spec import SOURCE
from nerftune.growth import growth_tags, planned_trials, recorded_rounds
from nerftune.state import (
    adopt_spec,
    forced_tags,
    new_state,
    read_state,
    record_forced,
    record_growth,
    resume_decision,
    write_state,
)
from nerftune.tracking import SWEEP_TAG, TrackingTarget, target_for
from nerftune.tracking_check import check_tracking_store
from nerftune.trial_memory import memory_warnings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nerftune sweep", description=described(__doc__), epilog=STOPPING)
    parser.add_argument("spec", help="the sweep spec (YAML)")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the plan; start nothing")
    parser.add_argument("--address", help="join a running Ray cluster (auto, ray://host:10001; default: $RAY_ADDRESS)")
    parser.add_argument("--storage", default="sweeps", help="folder of sweep outputs (default: sweeps)")
    parser.add_argument("--name", help="sweep name (default: the spec's name)")
    parser.add_argument("--restart", action="store_true", help="start over; the old sweep folder is moved aside")
    parser.add_argument("--force", action="store_true", help="resume even though the spec or the data changed")
    parser.add_argument("--retry-errored", action="store_true", help="on resume, retry trials that errored")
    parser.add_argument("--tracking-uri", help="MLflow tracking server (default: sweeps/mlflow.db, or the spec's)")
    parser.add_argument("--verbose", action="store_true", help="show Ray's and nerfstudio's own output too")
    args = parser.parse_args(argv)
    args.address = args.address or os.environ.get("RAY_ADDRESS") or None  # as Ray's own tools, e.g. in a Ray job
    try:
        prepared = prepare(args.spec, args.storage, args.name, on_cluster=bool(args.address))
        resume = resume_decision(prepared, args.restart, args.force, args.dry_run)
        target = target_for(prepared.spec.tracking, prepared.storage, prepared.name, args.tracking_uri)
        if target:
            where = ("command line", "--tracking-uri") if args.tracking_uri else (prepared.spec_path, "tracking.uri")
            check_tracking_store(target.uri, *where)
        if args.address:
            check_cluster(prepared, args.address)
        else:
            check_machine(prepared)
    except InputError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        return 2
    slow = cpu_training_warning(prepared, bool(args.address))
    for warning in [*prepared.warnings, *memory_warnings(prepared, bool(args.address)), *filter(None, [slow])]:
        print(f"warning: {warning}", file=sys.stderr)
    print(describe_plan(prepared, bool(args.address), target), flush=True)
    for line in prepared.growth.lines(prepared.experiment_dir) if prepared.growth else []:
        print(line, flush=True)
    if args.dry_run:
        return 0
    try:
        if prepared.gpu_per_trial is None:
            prepared.packing = measure_packing(prepared, lambda line: print(line, flush=True))
            print(training_text(prepared, bool(args.address)), flush=True)
        if prepared.spec.warm_start is not None:
            prepared.init_sources = {**prepared.init_sources, **train_source(prepared, args)}
        run(prepared, args.address, resume, args.retry_errored, args.tracking_uri, args.verbose)
    except SourceFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    except Interrupted:
        return INTERRUPTED_STATUS
    except KeyboardInterrupt:  # a second Ctrl-C, or one before Ray Tune's own handler took over
        print(
            f"\ninterrupted: the same command resumes the sweep from what Ray last saved in {prepared.experiment_dir}",
            file=sys.stderr,
        )
        return INTERRUPTED_STATUS
    return 0


INTERRUPTED_STATUS = 130  # as a shell reports a command stopped by Ctrl-C (128 + SIGINT)
STOPPING = "Ctrl-C, or SIGUSR1 to this command alone (a batch job near its limit), saves and stops; rerun to resume"


class Interrupted(Exception):
    """The sweep was stopped (Ctrl-C or SIGUSR1) before its trials ended; Ray saved its state, and the same command
    resumes it."""


class SourceFailed(RuntimeError):
    """The warm start's source trial did not complete: no trial can start from it."""


def train_source(prepared: Prepared, args: argparse.Namespace) -> dict[str, str]:
    """`warm_start`: train the source model first, as the sweep NAME-source (resumed or restarted with this one);
    returns the `init_sources` entry that starts every `init_from: source` trial from its last checkpoint."""
    from nerftune.trials import locate, trial_folders

    source = replace(
        prepared,
        spec=prepared.spec.source_spec(),
        name=source_name(prepared),
        init_sources={},
        warnings=[],
        forced=[],
        growth=None,
    )
    print(f"warm start: training the source model first, as sweep {source.name}", flush=True)
    state = read_state(source.experiment_dir) if prepared.growth and prepared.growth.source_kept else None
    if state is not None:  # a study that grows keeps its source, whose values the added replicates left alone
        adopt_spec(state, source)
        write_state(source.experiment_dir, state)
    resume = state is not None or resume_decision(source, args.restart, args.force, dry_run=False)
    for warning in source.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    table = run(source, args.address, resume, args.retry_errored, args.tracking_uri, args.verbose)
    if (table.stop_reason != "completed").any():
        reason = table.stop_reason.iloc[0]
        raise SourceFailed(f"the source model of the warm start stopped ({reason}); see {source.experiment_dir}")
    (folder,) = trial_folders(source.experiment_dir)
    return {SOURCE: str(locate(folder)[1].resolve())}


def run(
    prepared: Prepared,
    address: str | None = None,
    resume: bool = False,
    retry_errored: bool = False,
    tracking_uri: str | None = None,
    verbose: bool = False,
) -> Any:
    """Run or resume the sweep; returns the results table (also written to results.csv)."""
    from nerftune import console, quiet, tuner
    from nerftune.novel_views import render_best_trials, rendered_trials_text
    from nerftune.provenance import provenance
    from nerftune.report import build_report
    from nerftune.results import results_table, with_values

    spec, folder = prepared.spec, prepared.experiment_dir
    state = (read_state(folder) if resume else None) or new_state(prepared)
    state.setdefault("provenance", provenance(prepared))
    record_forced(state, prepared)
    record_growth(state, prepared)
    state["gpu_per_trial"] = prepared.gpu_per_trial  # what `gpu: auto` chose, for the report's costs
    dimensions = list(spec.searched)
    with quiet.quiet_output(folder / console.LOG_FILE, verbose) as terminal:
        if resume and not prepared.growth:
            terminal.say(f"resuming sweep {prepared.name} from {folder}")
        target = _open_tracking(prepared, state, tracking_uri, terminal)
        write_state(folder, state)  # with the sweep's MLflow run id, which a resumed sweep reopens
        trials = prepared.growth.round.count if prepared.growth else spec.trial_count
        view = console.LiveView(trials, spec.max_steps, spec.metric.name, dimensions)
        plan = tuner.trial_plan(prepared, target)
        rounds = recorded_rounds(state)
        records = tuner.fit(prepared, plan, address, resume, retry_errored, [view], verbose, rounds)
        table = results_table(records, list(spec.space), spec.metric.name, spec.metric.mode)
        table.to_csv(folder / RESULTS_FILE, index=False)
        if any(record.unfinished for record in records):
            _wind_down(prepared, table, target, terminal, planned_trials(state, spec))
            raise Interrupted()
        state["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_state(folder, state)
        if spec.render and spec.render.trials == "best":
            views = len(prepared.largest_scene.camera_paths["camera_path"])
            terminal.say(f"rendering {views} novel views of {rendered_trials_text(spec)}")
            rendered = {}
            for line, trial_id, metrics in render_best_trials(prepared, table, target, terminal.say):
                terminal.say(line)
                rendered[trial_id] = metrics
            table = with_values(table, rendered)
            table.to_csv(folder / RESULTS_FILE, index=False)
        report = build_report(folder)
        if target:
            _publish_report(target, report, table, spec, terminal)
            _close_tracking(prepared, target, table, terminal)
        for line in console.summary_lines(table, spec, folder):
            terminal.say(line)
        terminal.say(f"report: {report}  (nerftune report {shlex.quote(str(folder))} writes it again)")
        if not verbose:
            terminal.say(f"everything else Ray and nerfstudio said: {folder / console.LOG_FILE}")
    return table


def _wind_down(prepared: Prepared, table: Any, target: TrackingTarget | None, terminal, planned: int) -> None:
    """After an interruption: say where the sweep stands and how to go on; the unfinished trials' MLflow runs and the
    sweep's are marked KILLED (a resume reopens them). No renders and no report: `nerftune report` makes one."""
    ended = int((table.stop_reason != StopReason.UNFINISHED.value).sum())
    terminal.say(
        f"interrupted: {ended} of {planned} trials ended, {len(table) - ended} unfinished, {planned - len(table)} "
        "not started"
    )
    if target:
        _close_tracking(prepared, target, table, terminal, status="KILLED")
    terminal.say(f"results so far: {prepared.experiment_dir / RESULTS_FILE}")
    terminal.say(
        f"Ray saved the sweep's state: the same command resumes it from the trials' last checkpoints "
        f"(nerftune report {shlex.quote(str(prepared.experiment_dir))} reports what is done)"
    )


def _open_tracking(prepared: Prepared, state: dict, tracking_uri: str | None, terminal) -> TrackingTarget | None:
    """The sweep's MLflow run (reopened on resume: its id is in the state file), with the sweep's provenance."""
    from nerftune.tracking_sweep import start_sweep

    target = target_for(prepared.spec.tracking, prepared.storage, prepared.name, tracking_uri)
    if target is None:
        return None
    target, failures = start_sweep(
        replace(target, parent_run_id=state.get("mlflow_run_id")),
        prepared.spec_path,
        state["provenance"],
        {SWEEP_TAG: prepared.name, **forced_tags(state), **growth_tags(state)},
        (list(prepared.spec.searched), prepared.spec.metric.name, prepared.spec.metric.mode),
    )
    state["mlflow_run_id"] = target.parent_run_id
    state["tracking_uri"] = target.uri  # where exports made later log to the trials' runs
    if failures:
        terminal.warn(f"MLflow at {target.uri} is not reachable ({failures[-1]}); trials train anyway")
    return target


def _publish_report(target: TrackingTarget, report: Path, table: Any, spec, terminal) -> None:
    from nerftune.report.answers import study_lines
    from nerftune.tracking_sweep import markdown_table, publish_report

    shown = [c for c in ("trial_id", "configuration", *table.columns[2:8], "steps_done", "stop_reason") if c in table]
    best = "".join(f"{line}.\n\n" for line in study_lines(table, spec))
    description = (
        f"nerftune sweep: {len(table)} trials. Report: `{report}` (and this experiment's sweep run, "
        f"artifact report/index.html).\n\n{best}" + markdown_table(table[list(dict.fromkeys(shown))].head(20))
    )
    failures = publish_report(target, report.parent, description)
    if failures:
        terminal.warn(f"MLflow at {target.uri}: the report could not be logged ({failures[-1]})")


def _close_tracking(prepared: Prepared, target: TrackingTarget, table: Any, terminal, status: str = "FINISHED") -> None:
    from nerftune.tracking_sweep import finish_sweep, trial_summaries, ui_link

    metric = prepared.spec.metric.name
    best = best_row(table, metric)
    summary = {f"best_{metric}": best[f"best_{metric}"]} if best else {}
    results = prepared.experiment_dir / RESULTS_FILE
    failures = finish_sweep(target, trial_summaries(table, metric), summary, results, status)
    failed_trials = int((table.get("tracking_failures", 0) > 0).sum()) if len(table) else 0
    if failures or failed_trials:
        terminal.warn(
            f"MLflow at {target.uri}: {failed_trials} trial(s) and the sweep could not log everything"
            f"{f' ({failures[-1]})' if failures else ''}; results.csv has every result"
        )
    else:
        terminal.say(f"MLflow: experiment {target.experiment} at {target.uri}; in the UI: {ui_link(target)}")


if __name__ == "__main__":
    sys.exit(main())
