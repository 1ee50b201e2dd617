"""ASHA's rungs, computed without Ray, are those of Ray's own ASHA (the reference; pinned: Ray 2.60); what Tune saves of
a trial stopped by nerftune's scheduler."""

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
