"""The searcher: Optuna proposes configurations; each runs once per replicate value; Optuna hears one value each.

A configuration is a set of values of the searched dimensions but the replicate one (`replicates: seed`). It runs
as one trial per replicate value, the same values for every configuration (common random numbers). When all its
replicates have ended, Optuna is told their mean final metric, or PRUNED (with the mean at the last step all of
them reached) if the scheduler stopped them: a configuration stopped at 200 steps is not as good as its 200-step
PSNR. A configuration is never proposed twice (training is seeded: a repeat would only cost GPU time). Without
`replicates` each configuration is one trial.

This is Optuna's ask-and-tell interface behind Ray Tune's `Searcher` (checked against Ray 2.60 and Optuna 5,
pinned in pyproject.toml). Its whole state is pickled with Ray's experiment state, so a resumed sweep neither
repeats a configuration nor splits one's replicates.
"""

from __future__ import annotations

import logging
import math
import pickle
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from ray.tune.search import Searcher

from nerftune.configuration_asha import WAITING_AT_RUNG
from nerftune.spec import CONFIGURATION, Dimension, SweepSpec, value_text

logger = logging.getLogger(__name__)
DUPLICATE_RETRIES = 50


def choice_label(value: Any) -> Any:
    """Optuna's categorical choices must be None, bool, int, float or str: a list or mapping goes by its JSON."""
    return value_text(value) if isinstance(value, (list, dict)) else value


@dataclass
class Configuration:
    """One proposal of Optuna's and the trials that run it, one per replicate value."""

    ot_trial: optuna.trial.Trial
    trials: list[str] = field(default_factory=list)
    ended: dict[str, str] = field(default_factory=dict)  # trial -> "complete", "stopped" or "error"
    told: bool = False  # Optuna has its value (a replicate retried later with --retry-errored cannot change it)


class OwnSearcher(Searcher):
    """A searcher that counts its trials at once itself (Tune then adds no limiter of its own), and whose whole state
    is pickled: Ray saves it with the experiment's, and a resumed run restores it."""

    def __init__(self, metric: str, mode: str):
        super().__init__(metric=metric, mode=mode)
        self.live: set[str] = set()  # trials handed out and not yet ended
        self.max_concurrent = 0

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.max_concurrent = max_concurrent
        return True

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))


class ConfigurationSearch(OwnSearcher):
    first = 0  # the number of its first configuration: a grown study's round numbers on from the sweep's last

    def __init__(
        self,
        space: dict[str, optuna.distributions.BaseDistribution],
        sampler: optuna.samplers.BaseSampler,
        metric: str,
        mode: str,
        replicate: str | None,
        replicate_values: list[Any],
        values_of_labels: dict[str, dict[Any, Any]],
    ):
        super().__init__(metric=metric, mode=mode)
        self.space = space
        self.study = optuna.create_study(sampler=sampler, direction="maximize" if mode == "max" else "minimize")
        self.replicate, self.replicate_values = replicate, replicate_values
        self.values_of_labels = values_of_labels  # per dimension: Optuna's choice -> the spec's value
        self.configurations: list[Configuration] = []
        self.queue: list[dict[str, Any]] = []  # trials of the newest configuration not yet handed to Ray
        self.configuration_of: dict[str, int] = {}  # trial id -> index in self.configurations
        self.curves: dict[str, dict[int, float]] = {}  # trial id -> step -> metric

    def suggest(self, trial_id: str) -> dict | None:
        # a replicate paused at a rung for its siblings holds no resources: it does not count
        if self.max_concurrent and len(self.live - WAITING_AT_RUNG) >= self.max_concurrent:
            return None
        if not self.queue:
            self._propose()
        config = self.queue.pop(0)
        self.configuration_of[trial_id] = config[CONFIGURATION] - self.first
        self.configurations[config[CONFIGURATION] - self.first].trials.append(trial_id)
        self.live.add(trial_id)
        return config

    def _propose(self) -> None:
        """Ask Optuna for a configuration not run before (asking again, up to a limit, while it repeats one)."""
        done = [c.ot_trial.params for c in self.configurations]
        for _ in range(DUPLICATE_RETRIES):
            ot_trial = self.study.ask(self.space)
            if ot_trial.params not in done:
                break
            self._tell(ot_trial, optuna.trial.TrialState.FAIL)  # ignored by Optuna's samplers
        index = len(self.configurations)
        self.configurations.append(Configuration(ot_trial))
        values = {k: self.values_of_labels.get(k, {}).get(v, v) for k, v in ot_trial.params.items()}
        self.queue = [
            {**values, CONFIGURATION: self.first + index, **({self.replicate: r} if self.replicate else {})}
            for r in self.replicate_values
        ]

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self.metric in result and "step" in result:
            self.curves.setdefault(trial_id, {})[int(result["step"])] = result[self.metric]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """A replicate ended: completed, stopped by the scheduler (perhaps while paused: no result), or errored."""
        self.live.discard(trial_id)
        if trial_id not in self.configuration_of:
            return
        if result:
            self.on_trial_result(trial_id, result)
        complete = bool(result) and result.get("step", 0) >= result.get("target_steps", math.inf)
        configuration = self.configurations[self.configuration_of[trial_id]]
        configuration.ended[trial_id] = "error" if error else "complete" if complete else "stopped"
        if len(configuration.ended) == len(self.replicate_values) and not configuration.told:
            self._conclude(configuration)

    def _conclude(self, configuration: Configuration) -> None:
        """Tell Optuna the configuration's mean curve (at the steps all its replicates reached) and how it ended."""
        configuration.told = True
        ran = [t for t in configuration.trials if configuration.ended[t] != "error" and self.curves.get(t)]
        if not ran:
            return self._tell(configuration.ot_trial, optuna.trial.TrialState.FAIL)
        common = sorted(set.intersection(*(set(self.curves[t]) for t in ran)))
        means = {step: float(np.nanmean([self.curves[t][step] for t in ran])) for step in common}
        for step, mean in means.items():
            if math.isfinite(mean):
                configuration.ot_trial.report(mean, step)  # keyed by training step
        finished = all(configuration.ended[t] == "complete" for t in ran)
        if finished and common and math.isfinite(means[common[-1]]):
            self._tell(configuration.ot_trial, optuna.trial.TrialState.COMPLETE, means[common[-1]])
        else:
            self._tell(configuration.ot_trial, optuna.trial.TrialState.PRUNED)

    def _tell(self, ot_trial: optuna.trial.Trial, state: optuna.trial.TrialState, value: float | None = None) -> None:
        try:
            self.study.tell(ot_trial, value, state=state)
        except RuntimeError as error:  # Grid and brute-force samplers stop the study when done; outside optimize()
            logger.debug("optuna: %s", error)


def optuna_space(space: dict[str, Dimension]) -> dict[str, optuna.distributions.BaseDistribution]:
    distributions = {}
    for name, dim in space.items():
        if dim.values is not None:
            distributions[name] = optuna.distributions.CategoricalDistribution(list(map(choice_label, dim.values)))
        elif dim.type == "int":
            distributions[name] = optuna.distributions.IntDistribution(int(dim.min), int(dim.max), log=dim.log)
        else:
            distributions[name] = optuna.distributions.FloatDistribution(dim.min, dim.max, log=dim.log)
    return distributions


def build_sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    seed, space = spec.search.seed, spec.configuration_space
    if spec.search.algorithm == "grid":
        return optuna.samplers.GridSampler({k: list(map(choice_label, d.choices)) for k, d in space.items()}, seed)
    if spec.search.algorithm == "random":
        if all(dim.values is not None for dim in space.values()):
            with warnings.catch_warnings():  # "experimental" since Optuna 3.1, and what a listed space needs
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.samplers.BruteForceSampler(seed=seed)  # every configuration once, in random order
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def build_searcher(spec: SweepSpec) -> ConfigurationSearch | None:
    if not spec.searched:
        return None  # nothing varies: every trial runs the fixed config
    return configuration_search(spec)


def configuration_search(spec: SweepSpec, first: int = 0) -> ConfigurationSearch:
    """The spec's configurations, numbered from `first`, each run once per replicate value."""
    space = spec.configuration_space
    with warnings.catch_warnings():  # Optuna warns that a study over nothing (replicates only) is odd
        warnings.simplefilter("ignore", UserWarning)
        search = ConfigurationSearch(
            space=optuna_space(space),
            sampler=build_sampler(spec),
            metric=spec.metric.name,
            mode=spec.metric.mode,
            replicate=spec.replicates,
            replicate_values=spec.replicate_values,
            values_of_labels={
                name: {choice_label(v): v for v in dim.choices if isinstance(v, (list, dict))}
                for name, dim in space.items()
            },
        )
    search.first = first
    return search


class FixedTrials(OwnSearcher):
    """Hands Ray Tune a list of trials as they are, in order: the replicates a grown study adds (`growth.py`), each
    with its configuration's values and number. Nothing is searched and nothing is told: every configuration was
    chosen, and judged, by the run that first tried it. Its state goes with Ray's, so a resumed round neither repeats
    nor skips a trial."""

    def __init__(self, trials: list[dict[str, Any]], metric: str, mode: str):
        super().__init__(metric, mode)
        self.pending = [dict(trial) for trial in trials]

    def suggest(self, trial_id: str) -> dict | None:
        if not self.pending:
            return Searcher.FINISHED
        if self.max_concurrent and len(self.live) >= self.max_concurrent:
            return None
        self.live.add(trial_id)
        return self.pending.pop(0)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.live.discard(trial_id)
