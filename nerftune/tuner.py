"""Ray Tune assembly: the trainable with its plan and resources, a new or restored Tuner, and the run itself."""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import ray
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from nerftune.checkpoint_repair import CheckpointRepair
from nerftune.machine import cpu_count
from nerftune.plan import trial_resources
from nerftune.preflight import Prepared
from nerftune.quiet import terminal
from nerftune.results import TrialRecord, record_of
from nerftune.schedule import build_scheduler, rungs
from nerftune.growth import Round
from nerftune.search import FixedTrials, build_searcher, configuration_search
from nerftune.spec import SweepSpec
from nerftune.tracking import TrackingTarget
from nerftune.trial_entry import train_trial
from nerftune.trial_plan import RenderPlan, TrialPlan
from nerftune.trials import INTERRUPTED_FOLDER, set_aside_unrecorded

# for a nerfstudio plugin that keeps state between runs in its modules: every trial in a new worker process
FRESH_WORKERS = "NERFTUNE_FRESH_WORKERS"


def trial_plan(prepared: Prepared, target: TrackingTarget | None) -> TrialPlan:
    spec = prepared.spec
    render = spec.render
    each = render is not None and render.trials == "each"
    return TrialPlan(
        sweep_dir=str(prepared.experiment_dir.resolve()),  # the workers run in folders of their own
        scenes={name: (str(scene.data_dir), scene.test_every) for name, scene in prepared.scenes.items()},
        data_hashes={name: scene.dataset.data_hash for name, scene in prepared.scenes.items()},
        profile=spec.profile,
        rungs=rungs(spec),
        eval_every=spec.eval.every,
        eval_max_images=spec.eval.max_images,
        train_log_every=spec.eval.train_log_every,
        cpus_per_trial=spec.resources.cpu,
        fast_path=spec.fast_path,
        metric=spec.metric.name,
        mode=spec.metric.mode,
        tracking=target,
        init_sources=prepared.init_sources,
        render=RenderPlan(
            {name: scene.camera_paths for name, scene in prepared.scenes.items()},
            prepared.camera_paths_name,
            render.video,
            render.crop,
            render.legibility,
        )
        if each
        else None,
    )


def fit(
    prepared: Prepared,
    plan: TrialPlan,
    address: str | None,
    resume: bool,
    retry_errored: bool,
    callbacks: list[tune.Callback],
    verbose: bool,
    rounds: Sequence[Round] = (),
) -> list[TrialRecord]:
    """Run the sweep (or continue it from its folder) on Ray, then each round that grew it (`growth.py`: resumed
    from its folder, or new); returns every trial's record. An interrupted run leaves the rounds after it."""
    # Tune snapshots its state at every checkpoint when num_to_keep is set, and warns about it each time
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # without an address a Ray of its own ("local"): Ray would join the cluster that `ray start` last started on this
    # machine, unchecked, or wait for ever on one that has died since; given the CPUs the plan counted and checked
    own = {} if address else {"num_cpus": cpu_count()}
    ray.init(address=address or "local", include_dashboard=False, configure_logging=False, log_to_driver=True, **own)
    # Tune's default loggers include TensorBoardX, which imports torch into this process (about 4 s on 2 cores) and
    # writes event files; nerftune keeps its curves in MLflow and reads result.json, so a run names its loggers
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    try:
        with without_wandb():
            records = _fit_run(prepared, plan, None, address, resume, retry_errored, callbacks, verbose)
            for round in rounds:
                if any(record.unfinished for record in records):
                    break
                records += _fit_run(prepared, plan, round, address, True, retry_errored, callbacks, verbose)
    finally:
        ray.shutdown()
    return records


def _fit_run(
    prepared: Prepared,
    plan: TrialPlan,
    round: Round | None,
    address: str | None,
    resume: bool,
    retry_errored: bool,
    callbacks: list[tune.Callback],
    verbose: bool,
) -> list[TrialRecord]:
    """One Ray Tune run: the sweep's first (`round` None) or a round; new, or continued from its folder."""
    folder = round.folder(prepared.experiment_dir) if round else prepared.experiment_dir
    path = str(folder.resolve())  # Tune's ExperimentAnalysis takes no relative path
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, plan=replace(plan, sweep_dir=path) if round else plan),  # a round's folder
        trial_resources(prepared, on_cluster=bool(address)),
    )
    if resume and tune.Tuner.can_restore(path):
        # with the callbacks pickled with its run, its loggers among them
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=retry_errored)
    else:
        tuner = _new_tuner(prepared, trainable, callbacks, verbose, round)
    grid, interrupted = fit_noting_interruption(tuner)
    unfinished = unfinished_trials(path) if interrupted else {}
    moved = set_aside_unrecorded(folder, {Path(result.path).name for result in grid})
    if moved:
        terminal().say(
            f"{len(moved)} trial folder(s) that the interrupted run had started before Ray saved its state (their "
            f"configurations ran again as new trials): moved to {folder / INTERRUPTED_FOLDER}"
        )
    records = [record_of(result) for result in grid]
    return [
        replace(record, trial_id=unfinished[Path(result.path).name], unfinished=True)
        if Path(result.path).name in unfinished
        else record
        for record, result in zip(records, grid)
    ]


WANDB = ("wandb", "ray.air.integrations.wandb")


@contextmanager
def without_wandb() -> Iterator[None]:
    """Tune's usage telemetry counts a run's callbacks by importing its W&B integration, which imports wandb
    (installed with nerfstudio): 3 s of the driver's time on 2 cores, before the first trial starts, for a library
    this driver never uses (without it the first trial starts about 1.5 s sooner: benchmarks/launch.py). For the
    run, `import wandb` fails here (None in sys.modules), which the integration expects of a machine without it;
    afterwards both modules import as before. The trials' workers are separate processes, untouched."""
    if "wandb" in sys.modules:  # already imported by whoever runs the sweep in-process: nothing to save
        yield
        return
    sys.modules["wandb"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in WANDB:  # the integration too: it keeps the failed import's None
            sys.modules.pop(name, None)


# what Ray Tune stops a run on, saving its state (SIGUSR1 is missing on Windows)
STOP_SIGNALS = (signal.SIGINT, *([signal.SIGUSR1] if hasattr(signal, "SIGUSR1") else []))


def fit_noting_interruption(tuner: Any) -> tuple[Any, bool]:
    """Tune's run, and whether a stop signal ended it: Ctrl-C (SIGINT) or SIGUSR1, which Tune handles alike (a
    batch system can send the second to the command alone, minutes before its time is up). Tune installs its
    handlers for the run, and puts back the SIGINT one from before only when a signal stops the run (Tune does not
    say so otherwise). After a run that ends, its handlers stay, and a signal during the renders would only stop
    that finished run again, silently: the handlers from before are put back either way."""
    main_thread = threading.current_thread() is threading.main_thread()
    before = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    try:
        grid = tuner.fit()
        installed = main_thread and not int(os.environ.get("TUNE_DISABLE_SIGINT_HANDLER", "0"))
        return grid, installed and signal.getsignal(signal.SIGINT) is before[signal.SIGINT]
    finally:
        if main_thread:
            for number, handler in before.items():
                signal.signal(number, handler)


def unfinished_trials(folder: str) -> dict[str, str]:
    """The trials an interrupted run leaves to its resume (neither ended nor failed), by folder name, with their
    ids, as Tune saved them when it stopped: the grid it returns has every trial stopped by then."""
    from ray.tune import ExperimentAnalysis

    ended = ("TERMINATED", "ERROR")
    return {Path(t.path).name: t.trial_id for t in ExperimentAnalysis(folder).trials if t.status not in ended}


def _new_tuner(
    prepared: Prepared, trainable: Any, callbacks: list[tune.Callback], verbose: bool, round: Round | None
) -> tune.Tuner:
    spec, search, scheduler = _run_search(prepared, round)
    return tune.Tuner(
        trainable,
        param_space=dict(spec.fixed),
        tune_config=tune.TuneConfig(
            metric=spec.metric.name,
            mode=spec.metric.mode,
            search_alg=search,
            scheduler=scheduler,
            num_samples=round.count if round else spec.trial_count,
            max_concurrent_trials=spec.max_concurrent_trials or None,
            # a finished trial's worker takes the next trial: no new process importing torch and nerfstudio (about
            # 10 s each on 2 cores); every trial seeds, resets nerfstudio's globals and its GPU memory counters itself
            reuse_actors=os.environ.get(FRESH_WORKERS) != "1",
        ),
        run_config=tune.RunConfig(
            name=round.folder(prepared.experiment_dir).name if round else prepared.name,
            storage_path=str(prepared.experiment_dir if round else prepared.storage),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.checkpoints.keep),
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            # pickled with the run: a restored sweep has them too (result.json is what nerftune reads of Tune's logs)
            callbacks=[*callbacks, JsonLoggerCallback(), CSVLoggerCallback(), CheckpointRepair()],
            verbose=1 if verbose else 0,
        ),
    )


def _run_search(prepared: Prepared, round: Round | None) -> tuple[SweepSpec, Any, Any]:
    """A run's spec, searcher and scheduler: the sweep's for its first run; a round of added replicates hands its
    trials as they are, none stopped early; a round of added levels is a study of its own (its scheduler's book in
    its folder), numbered on from the sweep's configurations."""
    spec = prepared.spec
    if round is None:
        return spec, build_searcher(spec), build_scheduler(spec, prepared.experiment_dir)
    if round.trials is not None:
        return spec, FixedTrials(round.trials, spec.metric.name, spec.metric.mode), None
    levels = round.spec_of(spec)
    folder = round.folder(prepared.experiment_dir)
    return levels, configuration_search(levels, round.first), build_scheduler(levels, folder)
