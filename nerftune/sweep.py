"""`python -m nerftune.sweep SPEC.yaml`: validate, then run (or resume) the sweep on Ray Tune and write its results.

python -m nerftune.sweep search_spaces/demo.yaml --dry-run     # the plan, nothing started
python -m nerftune.sweep search_spaces/demo.yaml               # run, or resume an interrupted run
python -m nerftune.sweep search_spaces/demo.yaml --address auto  # on a running Ray cluster
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.optuna import OptunaSearch

from nerftune.errors import InputError
from nerftune.preflight import Prepared, prepare
from nerftune.results import TrialRecord, best_row, results_table
from nerftune.spec import Dimension, SweepSpec, spec_hash
from nerftune.tracking import SWEEP_TAG, TrackingTarget, finish_sweep, local_target, log_trial_folder, start_sweep
from nerftune.trainable import RenderPlan, TrialPlan, train_trial
from nerftune.trials import locate, read_recipe, trial_folders

logger = logging.getLogger(__name__)
STATE_FILE = "nerftune-sweep.json"
RESULTS_FILE = "results.csv"
PRUNED = "asha_pruned"
DUPLICATE_RETRIES = 50


class PruningOptunaSearch(OptunaSearch):
    """OptunaSearch that tells Optuna an early-stopped trial was PRUNED (at its last intermediate value), not COMPLETE,
    and that does not propose a configuration twice.

    Ray's OptunaSearch reports every trial that ends without an error as complete with its last (partial) score,
    which would teach TPE that a configuration stopped at 200 steps is as good as its 200-step PSNR.
    """

    def suggest(self, trial_id: str) -> dict | None:
        """Optuna's suggestion, asked again (up to a limit) while it repeats a configuration already run or running.

        Training is deterministic for a given config and seed, so a repeat would only cost GPU time. Skipped
        suggestions are told to Optuna as failed, which its samplers ignore.
        """
        for _ in range(DUPLICATE_RETRIES):
            config = super().suggest(trial_id)
            ot_trial = self._ot_trials[trial_id]
            if not any(
                t.params == ot_trial.params and t.number != ot_trial.number and t.state != optuna.trial.TrialState.FAIL
                for t in self._ot_study.get_trials(deepcopy=False)
            ):
                return config
            self._tell(self._ot_trials.pop(trial_id), optuna.trial.TrialState.FAIL)
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._ot_trials and trial_id not in self._completed_trials and self._metric in result:
            self._ot_trials[trial_id].report(result[self._metric], result["step"])  # steps, not report counts

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        stopped_early = bool(result) and not error and result.get("step", 0) < result.get("target_steps", 0)
        if not stopped_early or trial_id in self._completed_trials:
            return super().on_trial_complete(trial_id, result, error)
        self._tell(self._ot_trials[trial_id], optuna.trial.TrialState.PRUNED)
        self._completed_trials.add(trial_id)

    def _tell(self, ot_trial: optuna.trial.Trial, state: optuna.trial.TrialState) -> None:
        try:
            self._ot_study.tell(ot_trial, state=state)
        except (
            RuntimeError
        ) as error:  # GridSampler calls study.stop() once the grid is done; outside optimize() it raises
            logger.debug("optuna: %s", error)


def optuna_space(space: dict[str, Dimension]) -> dict[str, optuna.distributions.BaseDistribution]:
    distributions = {}
    for name, dim in space.items():
        if dim.values is not None:
            distributions[name] = optuna.distributions.CategoricalDistribution(dim.values)
        elif dim.type == "int":
            distributions[name] = optuna.distributions.IntDistribution(int(dim.min), int(dim.max), log=dim.log)
        else:
            distributions[name] = optuna.distributions.FloatDistribution(dim.min, dim.max, log=dim.log)
    return distributions


def build_searcher(spec: SweepSpec) -> OptunaSearch | None:
    if not spec.searched:
        return None  # nothing varies: every trial runs the fixed config (e.g. seeds of one setting)
    seed = spec.search.seed
    if spec.search.algorithm == "grid":
        sampler = optuna.samplers.GridSampler({k: d.choices for k, d in spec.searched.items()}, seed=seed)
    elif spec.search.algorithm == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    return PruningOptunaSearch(
        space=optuna_space(spec.searched), metric=spec.metric.name, mode=spec.metric.mode, sampler=sampler
    )


def build_scheduler(spec: SweepSpec) -> ASHAScheduler | FIFOScheduler:
    if spec.scheduler.type == "none":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="step",
        max_t=spec.max_steps,
        grace_period=spec.scheduler.grace_period,
        reduction_factor=spec.scheduler.reduction_factor,
    )


def asha_rungs(scheduler: ASHAScheduler | FIFOScheduler) -> tuple[int, ...]:
    """The steps at which ASHA compares trials (read from the scheduler itself, so they always agree)."""
    if not isinstance(scheduler, ASHAScheduler):
        return ()
    return tuple(sorted(math.ceil(milestone) for milestone, _ in scheduler._brackets[0]._rungs))


def trial_plan(prepared: Prepared, rungs: tuple[int, ...], tracking: TrackingTarget | None = None) -> TrialPlan:
    spec = prepared.spec
    return TrialPlan(
        data_dir=str(prepared.data_dir),
        test_every=spec.data.test_every,
        profile=spec.profile,
        rungs=rungs,
        eval_every=spec.eval.every,
        eval_max_images=spec.eval.max_images,
        train_log_every=spec.eval.train_log_every,
        cpus_per_trial=spec.resources.cpu,
        metric=spec.metric.name,
        mode=spec.metric.mode,
        tracking=tracking,
        render=_each_trial_render(prepared),
    )


def _each_trial_render(prepared: Prepared) -> RenderPlan | None:
    render = prepared.spec.render
    if render is None or render.trials != "each":
        return None
    return RenderPlan(prepared.camera_paths, prepared.camera_paths_name, render.video, render.crop)


def trial_resources(prepared: Prepared, on_cluster: bool) -> dict[str, float]:
    resources = {"cpu": prepared.spec.resources.cpu}
    if prepared.spec.resources.gpu > 0 and (prepared.gpus > 0 or on_cluster):
        resources["gpu"] = prepared.spec.resources.gpu
    return resources


def describe_plan(prepared: Prepared, on_cluster: bool, tracking_uri: str | None = None) -> str:
    spec, dataset = prepared.spec, prepared.dataset
    rungs = asha_rungs(build_scheduler(spec))
    lines = [
        f"sweep {prepared.name}: {spec.trial_count} trials, {spec.search.algorithm} search (seed {spec.search.seed}), "
        f"metric {spec.metric.name} ({spec.metric.mode})",
        f"data: {prepared.data_dir} ({len(dataset.frames)} frames: {len(dataset.pool)} in the training pool, "
        f"{len(dataset.test_indices)} test frames, test hash {dataset.test_hash})",
        "search dimensions:",
    ]
    for name, dim in spec.space.items():
        if dim.values is not None:
            shown = ", ".join(map(str, dim.values)) + ("" if len(dim.values) > 1 else "  (fixed)")
        else:
            shown = f"{dim.type} in [{dim.min:g}, {dim.max:g}]" + (" log" if dim.log else "")
        lines.append(f"  {name}: {shown}")
    if rungs:
        lines.append(f"scheduler: ASHA on `step`, rungs at steps {', '.join(map(str, rungs))} (max {spec.max_steps})")
    else:
        lines.append(f"scheduler: none, every trial trains its full steps (max {spec.max_steps})")
    resources = trial_resources(prepared, on_cluster)
    concurrency = spec.max_concurrent_trials or "as resources allow"
    lines.append(
        f"resources per trial: {', '.join(f'{v:g} {k}' for k, v in resources.items())}; "
        f"concurrent trials: {concurrency}"
    )
    devices = "a Ray cluster" if on_cluster else (f"{prepared.gpus} GPU(s)" if prepared.gpus else "CPU only")
    lines.append(f"devices: {devices}; profile: {spec.profile}; output: {prepared.experiment_dir}")
    target = tracking_target(prepared, tracking_uri)
    lines.append(f"tracking: MLflow experiment {target.experiment} at {target.uri}" if target else "tracking: off")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nerftune sweep", description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="the sweep spec (YAML)")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the plan; start nothing")
    parser.add_argument("--address", help="join a running Ray cluster (e.g. auto or ray://host:10001)")
    parser.add_argument("--storage", default="sweeps", help="folder of sweep outputs (default: sweeps)")
    parser.add_argument("--name", help="sweep name (default: the spec's name)")
    parser.add_argument("--restart", action="store_true", help="start over; the old sweep folder is moved aside")
    parser.add_argument("--force", action="store_true", help="resume even though the spec file changed")
    parser.add_argument("--retry-errored", action="store_true", help="on resume, retry trials that errored")
    parser.add_argument("--tracking-uri", help="MLflow tracking server (default: sweeps/mlflow.db, or the spec's)")
    args = parser.parse_args(argv)
    try:
        prepared = prepare(args.spec, args.storage, args.name, on_cluster=bool(args.address))
        resume = _resume_decision(prepared, args)
    except InputError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        return 2
    for warning in prepared.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(describe_plan(prepared, bool(args.address), args.tracking_uri))
    if args.dry_run:
        return 0
    table = run(prepared, args.address, resume, args.retry_errored, args.tracking_uri)
    _print_summary(prepared, table)
    return 0


def _resume_decision(prepared: Prepared, args: argparse.Namespace) -> bool:
    """Whether to restore an unfinished sweep from its folder; refuses when the spec changed (unless --force)."""
    folder = prepared.experiment_dir
    if args.restart and folder.exists() and not args.dry_run:
        aside = folder.with_name(f"{folder.name}.before-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(folder, aside)
        print(f"--restart: moved the previous sweep to {aside}")
        return False
    if not tune.Tuner.can_restore(str(folder)):
        return False
    state = json.loads((folder / STATE_FILE).read_text()) if (folder / STATE_FILE).exists() else {}
    if state.get("spec_hash") not in (None, spec_hash(prepared.spec_path)) and not args.force:
        raise InputError(
            prepared.spec_path,
            "",
            f"changed since sweep {prepared.name} started "
            f"({_first_change(state.get('spec_text', ''), prepared.spec_path)})",
            "rerun with --force to resume anyway, or --restart to start over",
        )
    return True


def _first_change(old_text: str, spec_path: Path) -> str:
    diff = [
        line
        for line in difflib.unified_diff(old_text.splitlines(), spec_path.read_text().splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return "; ".join(diff[:4]) or "whitespace only"


def run(
    prepared: Prepared,
    address: str | None,
    resume: bool,
    retry_errored: bool = False,
    tracking_uri: str | None = None,
):
    """Run or resume the sweep; returns the results table (also written to results.csv)."""
    import ray

    # Tune snapshots its state at every checkpoint when num_to_keep is set, and warns about it each time
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    spec = prepared.spec
    scheduler = build_scheduler(spec)
    state = _read_state(prepared) if resume else _new_state(prepared)
    target = _start_tracking(prepared, state.get("mlflow_run_id"), tracking_uri)
    state["mlflow_run_id"] = target.parent_run_id if target else None
    (prepared.experiment_dir / STATE_FILE).write_text(json.dumps(state, indent=2))
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, plan=trial_plan(prepared, asha_rungs(scheduler), target)),
        trial_resources(prepared, bool(address)),
    )
    ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=True)
    try:
        if resume:
            print(f"resuming sweep {prepared.name} from {prepared.experiment_dir}")
            tuner = tune.Tuner.restore(
                str(prepared.experiment_dir), trainable, resume_unfinished=True, resume_errored=retry_errored
            )
        else:
            tuner = _new_tuner(prepared, trainable, scheduler)
        grid = tuner.fit()
    finally:
        ray.shutdown()
    records = [_record(result) for result in grid]
    pruned = PRUNED if spec.scheduler.type == "asha" else "stopped"
    table = results_table(records, list(spec.space), spec.metric.name, spec.metric.mode, pruned)
    results_path = prepared.experiment_dir / RESULTS_FILE
    table.to_csv(results_path, index=False)
    if spec.render and spec.render.trials == "best":
        render_best(prepared, table, target)
    if target:
        _finish_tracking(prepared, target, table, results_path)
    return table


def render_best(prepared: Prepared, table: Any, target: TrackingTarget | None) -> None:
    """Render the best K completed trials (by the sweep's metric) from their last checkpoints, in this process."""
    from nerftune.novel_views import render_trial

    spec = prepared.spec
    done = table[(table.stop_reason == "completed") & table[f"best_{spec.metric.name}"].notna()]
    best = done.sort_values(f"best_{spec.metric.name}", ascending=spec.metric.mode == "min").head(spec.render.best_k)
    folders = {read_recipe(folder).trial_id: folder for folder in trial_folders(prepared.experiment_dir)}
    for trial_id in best.trial_id:
        folder, checkpoint = locate(folders[trial_id])
        out = folder / "renders" / prepared.camera_paths_name
        summary = render_trial(folder, checkpoint, prepared.camera_paths, out, spec.render.video, spec.render.crop)
        logged = target and log_trial_folder(target, trial_id, out, f"renders/{prepared.camera_paths_name}")
        print(
            f"rendered trial {trial_id}: {summary['views']} views at {summary['fps']:.2f} fps -> {out}"
            + (" (and MLflow)" if logged else "")
        )


def _new_tuner(prepared: Prepared, trainable: Any, scheduler: Any) -> tune.Tuner:
    spec = prepared.spec
    return tune.Tuner(
        trainable,
        param_space=dict(spec.fixed),
        tune_config=tune.TuneConfig(
            metric=spec.metric.name,
            mode=spec.metric.mode,
            search_alg=build_searcher(spec),
            scheduler=scheduler,
            num_samples=spec.trial_count,
            max_concurrent_trials=spec.max_concurrent_trials or None,
        ),
        run_config=tune.RunConfig(
            name=prepared.name,
            storage_path=str(prepared.storage),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.checkpoints.keep),
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            verbose=1,
        ),
    )


def _new_state(prepared: Prepared) -> dict[str, Any]:
    prepared.experiment_dir.mkdir(parents=True, exist_ok=True)
    return {
        "spec_path": str(prepared.spec_path.resolve()),
        "spec_hash": spec_hash(prepared.spec_path),
        "spec_text": prepared.spec_path.read_text(),
        "data_dir": str(prepared.data_dir),
        "test_hash": prepared.dataset.test_hash,
        "test_files": prepared.dataset.test_names,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _read_state(prepared: Prepared) -> dict[str, Any]:
    path = prepared.experiment_dir / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else _new_state(prepared)


def tracking_target(prepared: Prepared, tracking_uri: str | None) -> TrackingTarget | None:
    settings = prepared.spec.tracking
    if not settings.enabled:
        return None
    experiment = settings.experiment or prepared.name
    options = dict(checkpoints=settings.checkpoints, images=settings.images, preview_images=settings.preview_images)
    uri = tracking_uri or settings.uri
    return TrackingTarget(uri, experiment, **options) if uri else local_target(prepared.storage, experiment, **options)


def _start_tracking(prepared: Prepared, parent_run_id: str | None, tracking_uri: str | None) -> TrackingTarget | None:
    target = tracking_target(prepared, tracking_uri)
    if target is None:
        return None
    target, failures = start_sweep(
        replace(target, parent_run_id=parent_run_id),
        prepared.spec_path,
        _provenance(prepared),
        {SWEEP_TAG: prepared.name},
    )
    if failures:
        print(
            f"warning: MLflow at {target.uri} is not reachable ({failures[-1]}); trials train anyway", file=sys.stderr
        )
    return target


def _provenance(prepared: Prepared) -> dict[str, Any]:
    """What makes the sweep's numbers reproducible and comparable: spec, test set, versions, machine, code."""
    from importlib.metadata import PackageNotFoundError, version

    from nerftune.nerf.device import gpu_names

    values: dict[str, Any] = {
        "spec_hash": spec_hash(prepared.spec_path),
        "test_hash": prepared.dataset.test_hash,
        "test_frames": len(prepared.dataset.test_indices),
        "data": str(prepared.data_dir),
        "trials": prepared.spec.trial_count,
        "search": prepared.spec.search.algorithm,
        "scheduler": prepared.spec.scheduler.type,
        "host": socket.gethostname(),
        "gpu": ", ".join(gpu_names()) or "none",
        "git_commit": _git_commit() or "unknown",
    }
    for package in ("nerftune", "nerfstudio", "ray", "torch", "optuna", "mlflow"):
        try:
            values[f"version.{package}"] = version(package)
        except PackageNotFoundError:
            values[f"version.{package}"] = "not installed"
    return values


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _finish_tracking(prepared: Prepared, target: TrackingTarget, table: Any, results_path: Path) -> None:
    metric = prepared.spec.metric.name
    finals = [f"best_{metric}", f"final_{metric}", "train_s", "eval_s", "setup_s", "wall_s", "steps_done"]
    trials = [
        {
            "trial_id": row["trial_id"],
            "stop_reason": row["stop_reason"],
            "steps_done": row["steps_done"],
            "final": {k: row[k] for k in finals if row.get(k) is not None and row[k] == row[k]},
        }
        for row in table.to_dict("records")
    ]
    best = best_row(table, metric)
    summary = {f"best_{metric}": best[f"best_{metric}"]} if best else {}
    failures = finish_sweep(target, trials, summary, results_path)
    failed_trials = int((table.get("tracking_failures", 0) > 0).sum()) if len(table) else 0
    if failures or failed_trials:
        print(
            f"warning: MLflow at {target.uri}: {failed_trials} trial(s) and the sweep could not log everything"
            f"{f' ({failures[-1]})' if failures else ''}; results.csv has every result",
            file=sys.stderr,
        )
    else:
        print(f"MLflow: experiment {target.experiment} at {target.uri}")


def _record(result: Any) -> TrialRecord:
    import pandas as pd

    history = result.metrics_dataframe if result.metrics_dataframe is not None else pd.DataFrame()
    if "step" not in history:
        history = pd.DataFrame(columns=["step"])
    trial_id = (result.metrics or {}).get("trial_id") or Path(result.path).name
    checkpoint = result.checkpoint.path if result.checkpoint else None
    error = f"{type(result.error).__name__}: {result.error}" if result.error else None
    return TrialRecord(str(trial_id), dict(result.config or {}), history, error, checkpoint)


def _print_summary(prepared: Prepared, table) -> None:
    import pandas as pd

    metric = prepared.spec.metric.name
    columns = ["trial_id", *prepared.spec.searched, f"best_{metric}", "steps_done", "stop_reason", "steps_per_s"]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(table[[c for c in columns if c in table]].to_string(index=False))
    best = best_row(table, metric)
    if best:
        values = ", ".join(f"{k}={best[k]}" for k in prepared.spec.searched)
        print(f"best trial {best['trial_id']}: {metric} {best[f'best_{metric}']:.3f} ({values})")
    print(f"results: {prepared.experiment_dir / RESULTS_FILE}")


if __name__ == "__main__":
    sys.exit(main())
