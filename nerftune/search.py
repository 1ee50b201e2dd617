"""The searcher: Optuna behind Ray Tune's OptunaSearch, told the truth about early-stopped trials.

Checked against Ray 2.60 and Optuna 5 (pinned in pyproject.toml): `PruningOptunaSearch` uses OptunaSearch's
`_ot_study`, `_ot_trials`, `_completed_trials` and `_metric`; tests/test_search.py fails on an upgrade that changes
them.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import optuna
from ray.tune.search.optuna import OptunaSearch

from nerftune.spec import Dimension, SweepSpec, value_text

logger = logging.getLogger(__name__)
DUPLICATE_RETRIES = 50


def choice_label(value: Any) -> Any:
    """Optuna's categorical choices must be None, bool, int, float or str: a list or mapping goes by its JSON."""
    return value_text(value) if isinstance(value, (list, dict)) else value


class PruningOptunaSearch(OptunaSearch):
    """OptunaSearch that tells Optuna an early-stopped trial was PRUNED (at its last intermediate value), not COMPLETE,
    that does not propose a configuration twice, and that hands trials list and mapping values, not their labels.

    Ray's OptunaSearch reports every trial that ends without an error as complete with its last (partial) score,
    which would teach TPE that a configuration stopped at 200 steps is as good as its 200-step PSNR.
    """

    def __init__(self, *args: Any, values_of_labels: dict[str, dict[Any, Any]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.values_of_labels = values_of_labels  # per dimension: Optuna's choice -> the spec's value

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
                break
            self._tell(self._ot_trials.pop(trial_id), optuna.trial.TrialState.FAIL)
        return {k: self.values_of_labels.get(k, {}).get(v, v) for k, v in config.items()} if config else config

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
    seed, searched = spec.search.seed, spec.searched
    if spec.search.algorithm == "grid":
        return optuna.samplers.GridSampler({k: list(map(choice_label, d.choices)) for k, d in searched.items()}, seed)
    if spec.search.algorithm == "random":
        if all(dim.values is not None for dim in searched.values()):
            with warnings.catch_warnings():  # "experimental" since Optuna 3.1, and what a listed space needs
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.samplers.BruteForceSampler(seed=seed)  # every configuration once, in random order
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def build_searcher(spec: SweepSpec) -> PruningOptunaSearch | None:
    if not spec.searched:
        return None  # nothing varies: every trial runs the fixed config (e.g. seeds of one setting)
    values_of_labels = {
        name: {choice_label(v): v for v in dim.choices if isinstance(v, (list, dict))}
        for name, dim in spec.searched.items()
    }
    return PruningOptunaSearch(
        space=optuna_space(spec.searched),
        metric=spec.metric.name,
        mode=spec.metric.mode,
        sampler=build_sampler(spec),
        values_of_labels=values_of_labels,
    )
