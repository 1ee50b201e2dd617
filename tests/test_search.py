"""The searcher: configurations from Optuna, one trial per replicate, one value per configuration told back."""

import pickle

import optuna
import pytest

from nerftune.search import ConfigurationSearch, build_searcher, choice_label
from nerftune.spec import parse_spec

COMPLETE, PRUNED = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED


def searcher_for(space: str, algorithm: str = "tpe", extra: str = "") -> ConfigurationSearch:
    spec = parse_spec(f"name: t\ndata: synthetic:id-card\nspace: {space}\nsearch: {{algorithm: {algorithm}}}\n{extra}")
    return build_searcher(spec)


def finish(searcher, trial_id, curve, target=400):
    """Report a trial's (step, psnr) curve and end it (stopped early when its last step is below the target)."""
    for step, value in curve:
        searcher.on_trial_result(trial_id, {"psnr": value, "step": step, "target_steps": target})
    step, value = curve[-1]
    searcher.on_trial_complete(trial_id, {"psnr": value, "step": step, "target_steps": target})


def test_stopped_configurations_are_pruned_in_optuna_with_their_last_value():
    searcher = searcher_for("{frames: {values: [2, 4]}, steps: 400}")
    searcher.suggest("stopped")
    finish(searcher, "stopped", [(100, 14.0)])
    searcher.suggest("finished")
    finish(searcher, "finished", [(100, 15.0), (400, 21.0)])
    stopped, finished = searcher.study.trials
    assert stopped.state == PRUNED and stopped.intermediate_values == {100: 14.0}
    assert finished.state == COMPLETE and finished.value == 21.0
    assert finished.intermediate_values == {100: 15.0, 400: 21.0}, "keyed by training step"


def test_replicates_share_a_configuration_and_optuna_hears_their_mean_once():
    searcher = searcher_for(
        "{frames: {values: [2, 4, 8]}, seed: {values: [0, 1, 2]}, steps: 400}", "grid", "replicates: seed\n"
    )
    configs = [searcher.suggest(f"t{i}") for i in range(6)]
    assert [c["seed"] for c in configs] == [0, 1, 2, 0, 1, 2], "the same replicate values for every configuration"
    assert [c["configuration"] for c in configs] == [0, 0, 0, 1, 1, 1]
    assert len({c["frames"] for c in configs[:3]}) == 1 and configs[0]["frames"] != configs[3]["frames"]
    finish(searcher, "t0", [(100, 14.0), (400, 20.0)])
    finish(searcher, "t1", [(100, 16.0), (400, 22.0)])
    assert searcher.study.trials[0].state == optuna.trial.TrialState.RUNNING, "waits for its last replicate"
    searcher.on_trial_complete("t2", None, error=True)  # an errored replicate does not hang its configuration
    for trial in ("t3", "t4"):
        finish(searcher, trial, [(100, 12.0)])
    searcher.on_trial_complete("t5")  # stopped while paused at a rung: Ray passes no result
    first, second = searcher.study.trials[:2]
    assert first.state == COMPLETE and first.value == 21.0 and first.intermediate_values == {100: 15.0, 400: 21.0}
    assert second.state == PRUNED and second.intermediate_values == {100: 12.0}
    third = searcher.suggest("t6")
    assert third["frames"] not in (configs[0]["frames"], configs[3]["frames"]), "a new configuration, not a repeat"


def test_paused_replicates_do_not_count_against_max_concurrent_trials():
    from nerftune.configuration_asha import WAITING_AT_RUNG

    searcher = searcher_for(
        "{frames: {values: [2, 4]}, seed: {values: [0, 1, 2]}, steps: 400}", "grid", "replicates: seed\n"
    )
    searcher.set_max_concurrency(2)
    assert searcher.suggest("a") and searcher.suggest("b")
    assert searcher.suggest("c") is None
    WAITING_AT_RUNG.add("a")
    try:
        assert searcher.suggest("c")["seed"] == 2
    finally:
        WAITING_AT_RUNG.discard("a")


def test_its_state_survives_a_pickle_round_trip():
    searcher = searcher_for(
        "{frames: {values: [2, 4]}, seed: {values: [0, 1]}, steps: 10}", "tpe", "replicates: seed\n"
    )
    searcher.suggest("a")
    path = "/tmp/nerftune-searcher-test.pkl"
    searcher.save(path)
    restored = searcher_for(
        "{frames: {values: [2, 4]}, seed: {values: [0, 1]}, steps: 10}", "tpe", "replicates: seed\n"
    )
    restored.restore(path)
    second = restored.suggest("b")
    assert second["configuration"] == 0 and second["seed"] == 1, "the rest of the first configuration's replicates"
    assert pickle.loads(pickle.dumps(restored.study)).trials[0].params == searcher.study.trials[0].params


@pytest.mark.parametrize("algorithm", ["tpe", "random", "grid"])
def test_no_configuration_is_proposed_twice(algorithm):
    searcher = searcher_for("{frames: {values: [2, 4, 8]}, seed: {values: [0, 1]}, steps: 10}", algorithm)
    configs = []
    for index in range(6):
        configs.append(searcher.suggest(f"t{index}"))
        searcher.on_trial_complete(f"t{index}", {"psnr": 10.0 + index, "step": 10, "target_steps": 10})
    assert len({(c["frames"], c["seed"]) for c in configs}) == 6, configs


def test_random_search_over_listed_values_uses_optunas_brute_force_sampler():
    searcher = searcher_for("{frames: {values: [2, 4]}, seed: {values: [0, 1]}, steps: 10}", "random")
    assert isinstance(searcher.study.sampler, optuna.samplers.BruteForceSampler)
    ranged = searcher_for("{frames: {type: float, min: 0.2, max: 1.0}, steps: 10}", "random")
    assert isinstance(ranged.study.sampler, optuna.samplers.RandomSampler)


def test_pruning_the_last_configuration_of_a_grid_does_not_raise():
    searcher = searcher_for("{frames: {values: [2, 4]}, steps: 400}", "grid")
    for trial in ("a", "b"):
        searcher.suggest(trial)
        finish(searcher, trial, [(100, 14.0)])
    assert [t.state for t in searcher.study.trials] == [PRUNED] * 2


@pytest.mark.parametrize("algorithm", ["tpe", "random", "grid"])
def test_list_and_mapping_values_reach_the_trial_as_themselves(algorithm):
    pairs = [[64, 32], [32, 16]]
    networks = [[{"hidden_dim": 16, "num_levels": 5}], [{"hidden_dim": 8, "num_levels": 4}]]
    searcher = searcher_for(
        f"{{steps: 10, pipeline.model.num_proposal_samples_per_ray: {{values: {pairs}}}, "
        f"pipeline.model.proposal_net_args_list: {{values: {networks}}}}}",
        algorithm,
    )
    configs = [searcher.suggest(f"t{i}") for i in range(4)]
    for config in configs:
        assert config["pipeline.model.num_proposal_samples_per_ray"] in pairs
        assert config["pipeline.model.proposal_net_args_list"] in networks
    assert len({repr(sorted(c.items())) for c in configs}) == 4, "each combination once"
    labels = searcher.study.trials[0].params.values()
    assert all(isinstance(label, str) and label.startswith("[") for label in labels), "Optuna sees JSON labels"
    assert choice_label([64, 32]) == "[64, 32]" and choice_label(3) == 3


def test_a_configuration_retried_after_it_was_told_is_not_told_again():
    searcher = searcher_for("{frames: {values: [2, 4]}, steps: 400}")
    searcher.suggest("a")
    searcher.on_trial_complete("a", None, error=True)
    assert searcher.study.trials[0].state == optuna.trial.TrialState.FAIL
    searcher.live.add("a")  # --retry-errored: Ray runs the same trial again
    finish(searcher, "a", [(100, 14.0), (400, 20.0)])
    assert searcher.study.trials[0].state == optuna.trial.TrialState.FAIL, "Optuna cannot be told twice"
