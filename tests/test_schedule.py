"""ASHA's rungs, computed without Ray, are those of Ray's own ASHA (the reference; pinned: Ray 2.60); what Tune saves of
a trial stopped by nerftune's scheduler."""

import inspect
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from nerftune.schedule import rungs
from nerftune.spec import parse_spec


def spec_with(steps: int, grace: int, factor: float):
    return parse_spec(
        f"name: t\ndata: synthetic:id-card\nspace: {{steps: {steps}}}\n"
        f"scheduler: {{type: asha, grace_period: {grace}, reduction_factor: {factor}}}\n"
    )


def rays_rungs(spec) -> tuple[int, ...]:
    from ray.tune.schedulers import ASHAScheduler

    scheduler = ASHAScheduler(
        time_attr="step",
        max_t=spec.max_steps,
        grace_period=spec.scheduler.grace_period,
        reduction_factor=spec.scheduler.reduction_factor,
    )
    return tuple(sorted(math.ceil(milestone) for milestone, _ in scheduler._brackets[0]._rungs))


@settings(max_examples=60, deadline=None)
@given(steps=st.integers(1, 40000), grace=st.integers(1, 5000), factor=st.sampled_from([1.5, 2, 2.5, 3, 4]))
def test_rungs_match_rays_asha(steps, grace, factor):
    if grace > steps:
        grace = steps
    spec = spec_with(steps, grace, factor)
    assert rungs(spec) == rays_rungs(spec)


def test_the_demo_rungs_and_no_rungs_without_asha():
    assert rungs(spec_with(800, 200, 2)) == (200, 400, 800)
    spec = parse_spec("name: t\ndata: synthetic:id-card\nspace: {steps: 800}\nscheduler: {type: none}\n")
    assert rungs(spec) == ()


def test_tunes_saved_state_takes_a_trials_new_status_only_once_the_trial_is_marked():
    """Why ConfigurationASHA marks the paused replicates it stops: Tune marks only trials with an actor, so a paused
    one stopped unmarked stays PAUSED in the state a resume reads, and would train again (real Ray classes; the
    controller without a cluster)."""
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial

    trial = Trial("train_trial", stub=True, trial_id="abc")
    trial.set_status(Trial.PAUSED)
    controller = TuneController.__new__(TuneController)
    controller._trials_to_cache, controller._trial_metadata = {trial}, {}

    def saved_status() -> str:
        return json.loads(controller._get_trial_checkpoints()["abc"][0])["status"]

    assert saved_status() == Trial.PAUSED
    trial.set_status(Trial.TERMINATED)
    assert saved_status() == Trial.PAUSED, "unmarked: the old status"
    controller._mark_trial_to_checkpoint(trial)
    assert saved_status() == Trial.TERMINATED


def test_a_restored_trial_loses_the_decision_tune_saved_for_it(tmp_path):
    """Tune saves with its state the decisions it holds back while a trial checkpoints, and on resume a stale PAUSE
    outranks the trial's next CONTINUE: a replicate paused at a rung decided before the kill then waits for ever.
    ConfigurationASHA drops them as each trial comes in (real Ray classes; the controller without a cluster)."""
    from ray.tune.execution.tune_controller import TrialRunnerWrapper, TuneController
    from ray.tune.experiment import Trial

    from nerftune.configuration_asha import ConfigurationASHA
    from nerftune.rung_book import RungBook

    controller = TuneController.__new__(TuneController)
    controller._cached_trial_decisions = {"abc": "PAUSE", "other": "PAUSE"}
    controller._queued_trial_decisions = {"abc": "PAUSE"}
    saved_apart = inspect.getsource(TuneController.__getstate__)  # what it leaves out of the saved state
    assert "_trials" in saved_apart and "_cached_trial_decisions" not in saved_apart, "the decisions are saved"

    scheduler = ConfigurationASHA(RungBook([20], 2, 2.0, "max"), "psnr", [], str(tmp_path / "rungs.json"))
    wrapped = TrialRunnerWrapper(controller, trial_executor=None)  # as Tune hands it to a scheduler
    scheduler.on_trial_add(wrapped, Trial("train_trial", stub=True, trial_id="abc"))
    assert controller._cached_trial_decisions == {"other": "PAUSE"}
    assert controller._queued_trial_decisions == {}


def test_a_paused_trial_runs_again_unless_it_waits_at_a_rung(tmp_path):
    """Released replicates, and any trial Tune paused on its own, run before new trials; one waiting does not."""
    from ray.tune.experiment import Trial

    from nerftune.configuration_asha import ConfigurationASHA
    from nerftune.rung_book import RungBook

    trials = {name: Trial("train_trial", stub=True, trial_id=name) for name in ("new", "waits", "orphan")}
    trials["waits"].set_status(Trial.PAUSED)
    scheduler = ConfigurationASHA(RungBook([20], 2, 2.0, "max"), "psnr", [], str(tmp_path / "rungs.json"))
    scheduler.waiting["waits"] = (trials["waits"], 20)

    class Controller:
        def get_trials(self):
            return list(trials.values())

    assert scheduler.choose_trial_to_run(Controller()) is trials["new"]
    trials["orphan"].set_status(Trial.PAUSED)
    assert scheduler.choose_trial_to_run(Controller()) is trials["orphan"]
