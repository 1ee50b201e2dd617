"""The searcher adapter over Ray's OptunaSearch: pruned trials, no repeats, list values; and Ray's internals it uses."""

import optuna
import pytest

from nerftune.search import PruningOptunaSearch, build_searcher, choice_label
from nerftune.spec import parse_spec


def searcher_for(space: str, algorithm: str = "tpe") -> PruningOptunaSearch:
    spec = parse_spec(f"name: t\ndata: synthetic:id-card\nspace: {space}\nsearch: {{algorithm: {algorithm}}}\n")
    return build_searcher(spec)


def test_rays_optuna_search_still_has_what_the_adapter_uses():
    """Fails loudly on a Ray upgrade that renames OptunaSearch's internals (pinned: ray 2.60)."""
    searcher = searcher_for("{frames: {values: [2, 4]}, steps: 400}")
    searcher.suggest("a")
    assert isinstance(searcher._ot_study, optuna.Study)
    assert isinstance(searcher._ot_trials["a"], optuna.Trial)
    assert searcher._completed_trials == set() and searcher._metric == "psnr"


def test_asha_stopped_trials_are_pruned_in_optuna_with_their_last_value():
    searcher = searcher_for("{frames: {values: [2, 4]}, steps: 400}")
    searcher.suggest("stopped")
    searcher.on_trial_result("stopped", {"psnr": 14.0, "step": 100, "target_steps": 400, "training_iteration": 1})
    searcher.on_trial_complete("stopped", {"psnr": 14.0, "step": 100, "target_steps": 400})
    searcher.suggest("finished")
    for step, value in ((100, 15.0), (400, 21.0)):
        searcher.on_trial_result(
            "finished", {"psnr": value, "step": step, "target_steps": 400, "training_iteration": 1}
        )
    searcher.on_trial_complete("finished", {"psnr": 21.0, "step": 400, "target_steps": 400})
    stopped, finished = searcher._ot_study.trials
    assert stopped.state == optuna.trial.TrialState.PRUNED
    assert stopped.intermediate_values == {100: 14.0}
    assert finished.state == optuna.trial.TrialState.COMPLETE and finished.value == 21.0
    assert finished.intermediate_values == {100: 15.0, 400: 21.0}, "keyed by training step"


@pytest.mark.parametrize("algorithm", ["tpe", "random", "grid"])
def test_no_configuration_is_proposed_twice(algorithm):
    searcher = searcher_for("{frames: {values: [2, 4, 8]}, seed: {values: [0, 1]}, steps: 10}", algorithm)
    configs = []
    for index in range(6):
        configs.append(searcher.suggest(f"t{index}"))
        searcher.on_trial_complete(f"t{index}", {"psnr": 10.0 + index, "step": 10, "target_steps": 10})
    assert len({tuple(sorted(c.items())) for c in configs}) == 6, configs


def test_random_search_over_listed_values_uses_optunas_brute_force_sampler():
    searcher = searcher_for("{frames: {values: [2, 4]}, seed: {values: [0, 1]}, steps: 10}", "random")
    assert isinstance(searcher._sampler, optuna.samplers.BruteForceSampler)
    ranged = searcher_for("{frames: {type: float, min: 0.2, max: 1.0}, steps: 10}", "random")
    assert isinstance(ranged._sampler, optuna.samplers.RandomSampler)


def test_pruning_the_last_trial_of_a_grid_does_not_raise():
    searcher = searcher_for("{frames: {values: [2, 4]}, steps: 400}", "grid")
    for trial in ("a", "b"):
        searcher.suggest(trial)
        searcher.on_trial_result(trial, {"psnr": 14.0, "step": 100, "target_steps": 400})
        searcher.on_trial_complete(trial, {"psnr": 14.0, "step": 100, "target_steps": 400})
    assert [t.state for t in searcher._ot_study.trials] == [optuna.trial.TrialState.PRUNED] * 2


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
    labels = searcher._ot_study.trials[0].params.values()
    assert all(isinstance(label, str) and label.startswith("[") for label in labels), "Optuna sees JSON labels"
    assert choice_label([64, 32]) == "[64, 32]" and choice_label(3) == 3
