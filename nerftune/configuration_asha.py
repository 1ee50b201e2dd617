"""nerftune's scheduler as Ray Tune sees it: a `RungBook` (the decisions) behind Ray's scheduler interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler

from nerftune.rung_book import CONTINUE, STOP, WAIT, RungBook, stratum_of
from nerftune.spec import CONFIGURATION

# ids of trials paused at a rung until the other replicates of their configuration get there: they hold no
# resources, so the searcher (in this same driver process) does not count them against max_concurrent_trials
WAITING_AT_RUNG: set[str] = set()


def configuration_of(trial_id: str, config: dict) -> str:
    return str(config.get(CONFIGURATION, trial_id))


class ConfigurationASHA(FIFOScheduler):
    """Ray Tune's face of a `RungBook`: reports go in, CONTINUE / PAUSE / STOP come out, and the replicates that
    waited at a rung are stopped or released when their configuration is decided. The book is saved after every
    change and read back on resume (Ray does not restore a scheduler's state)."""

    def __init__(self, book: RungBook, metric: str, stratify: list[str], book_path: str):
        super().__init__()
        self.book, self.metric_name, self.stratify, self.book_path = book, metric, stratify, book_path
        self.waiting: dict[str, tuple[Any, int]] = {}  # trial id -> (trial, step) paused at a rung

    def __setstate__(self, state: dict) -> None:
        """`Tuner.restore` unpickles the scheduler as it was created: the decisions since are in the book's file.
        Every unfinished trial restarts from its checkpoint, so none is waiting any more."""
        self.__dict__.update(state, waiting={})
        WAITING_AT_RUNG.clear()
        if Path(self.book_path).exists():
            self.book = RungBook.load(Path(self.book_path))

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if "step" not in result:
            return self.CONTINUE
        config, step = configuration_of(trial.trial_id, trial.config), int(result["step"])
        self.book.record(
            config, stratum_of(trial.config, self.stratify), trial.trial_id, step, result.get(self.metric_name)
        )
        self._changed(tune_controller, config)
        verdict = self.book.verdict(config, step)
        if verdict == WAIT and step < result.get("target_steps", step + 1):  # a finished replicate waits for nothing
            self.waiting[trial.trial_id] = (trial, step)
            WAITING_AT_RUNG.add(trial.trial_id)
            return self.PAUSE
        return self.STOP if verdict == STOP else self.CONTINUE

    def on_trial_add(self, tune_controller, trial) -> None:
        """A trial comes in: new, or restored by a resume. Tune saves the decisions it holds back while a trial
        checkpoints with its state (a Ray bug), and a restored PAUSE outranks the trial's next CONTINUE: the replicate
        would pause at a rung already decided, with nobody left to release it, and the sweep would never end."""
        controller = _unwrapped(tune_controller)
        controller._cached_trial_decisions.pop(trial.trial_id, None)
        controller._queued_trial_decisions.pop(trial.trial_id, None)

    def on_trial_error(self, tune_controller, trial) -> None:
        config = configuration_of(trial.trial_id, trial.config)
        self.book.lose(config, trial.trial_id)
        self._changed(tune_controller, config)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._forget(trial)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._forget(trial)

    def choose_trial_to_run(self, tune_controller):
        """A paused trial that waits for nothing first (finish what was started: a replicate released from its
        rung, or one Tune paused on its own), then a new trial. A released replicate may still be pausing (Ray saves
        it first): it is chosen once it is PAUSED."""
        trials = tune_controller.get_trials()
        released = (t for t in trials if t.status == Trial.PAUSED and t.trial_id not in self.waiting)
        return next(released, None) or next((t for t in trials if t.status == Trial.PENDING), None)

    def debug_string(self) -> str:
        return f"nerftune ASHA on configurations: {len(self.waiting)} replicate(s) waiting at a rung"

    def _changed(self, tune_controller, config: str) -> None:
        """Save the book, then stop or release the replicates of `config` that wait at a rung now decided (paused,
        or still pausing: Ray saves a trial before it is PAUSED, and its sibling may report meanwhile)."""
        self.book.save(Path(self.book_path))
        for trial_id, (trial, step) in list(self.waiting.items()):
            if configuration_of(trial_id, trial.config) != config:
                continue
            verdict = self.book.verdict(config, step)
            if verdict == STOP:
                self._forget(trial)
                tune_controller.stop_trial(trial)
                # Tune saves a trial's status in its state only once marked so, and marks only trials with an actor:
                # unmarked, a paused trial stopped here stays PAUSED in the state, and a resume would train it again
                _unwrapped(tune_controller)._mark_trial_to_checkpoint(trial)
            elif verdict == CONTINUE:
                self._forget(trial)  # released: chosen to run once paused

    def _forget(self, trial) -> None:
        self.waiting.pop(trial.trial_id, None)
        WAITING_AT_RUNG.discard(trial.trial_id)


def _unwrapped(tune_controller):
    """The controller behind the wrapper Tune hands its schedulers, which logs a warning on private access."""
    return getattr(tune_controller, "_tune_controller", tune_controller)
