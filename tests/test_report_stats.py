"""The report's statistics on tables whose answers are worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from nerftune.report import answers, scenes, stats
from nerftune.report.data import SweepData
from nerftune.spec import parse_spec


def test_interval_is_students_t_on_the_mean():
    mean, low, high = stats.interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    one = stats.interval([5.0])
    assert one[0] == 5.0 and math.isnan(one[1]) and math.isnan(one[2])


def test_an_interval_stays_within_the_values_its_metric_can_take():
    mean, low, high = stats.interval([0.95, 0.75], "ssim")  # t(0.975, 1) = 12.7: the t band spans about +-1.27
    assert mean == pytest.approx(0.85) and low == pytest.approx(0.85 - 12.7062 * 0.1, abs=1e-3) and high == 1.0
    assert stats.interval([0.02, 0.30], "lpips")[1] == 0.0
    assert stats.interval([0.9, 0.5], "doc_cer")[1:] == (0.0, 1.0), "a character error rate lies in [0, 1]"
    assert stats.interval([0.95, 0.75])[2] > 1.0, "a value with no known range keeps the plain t band"
    table = stats.seed_table(pd.DataFrame({"configuration": [0, 0], "ssim": [0.95, 0.75]}), [], "ssim")
    assert table.ci_high.iloc[0] == 1.0


def final_table():
    # two configurations (frames 6 and 12) with three seeds each, and one with a single seed
    return pd.DataFrame(
        {
            "trial_id": list("abcdefg"),
            "configuration": [0, 0, 0, 1, 1, 1, 2],
            "frames": [6, 6, 6, 12, 12, 12, 24],
            "psnr": [20.0, 21.0, 22.0, 23.0, 25.0, 27.0, 30.0],
            "train_s": [10.0, 12.0, 14.0, 20.0, 20.0, 20.0, 40.0],
        }
    )


def test_seed_table_and_the_pooled_noise_floor():
    seeds = stats.seed_table(final_table(), ["frames"], "psnr")
    assert seeds.n.tolist() == [3, 3, 1]
    assert seeds["mean"].tolist() == [21.0, 25.0, 30.0]
    assert seeds["std"].iloc[:2].tolist() == [1.0, 2.0] and math.isnan(seeds["std"].iloc[2])
    assert (seeds["min"].tolist(), seeds["max"].tolist()) == ([20.0, 23.0, 30.0], [22.0, 27.0, 30.0])
    # pooled over the two configurations with replicates: sqrt((2 * 1 + 2 * 4) / 4)
    assert stats.pooled_std(seeds) == pytest.approx(math.sqrt(10 / 4))


def test_neighbouring_levels_welch_and_the_probability_of_better():
    compared = stats.neighbour_levels(final_table(), "frames", [], "psnr", "max")
    first = compared.iloc[0]
    assert (first["from"], first["to"], first["difference"]) == (6, 12, 4.0)
    expected = scipy_stats.ttest_ind([20, 21, 22], [23, 25, 27], equal_var=False).pvalue
    assert first.welch_p == pytest.approx(expected)
    # no replicate of 6 frames reaches one of 12, yet 3 seeds a side leave real doubt (a bootstrap said 1.0)
    assert 0.9 < first.p_better < 0.99
    assert math.isnan(compared.iloc[1].welch_p) and math.isnan(compared.iloc[1].p_better), "one replicate at 24"
    lower = stats.neighbour_levels(final_table(), "frames", [], "psnr", "min")
    assert lower.iloc[0].p_better == pytest.approx(1 - first.p_better, abs=0.01), "lower is better: the other way"


@pytest.mark.parametrize(
    "a, b", [([19.99, 20.89], [23.03, 24.09]), ([20.0, 22.0], [21.0, 21.5]), ([5.0, 6.0], [1.0, 9.0])]
)
def test_two_seeds_a_side_give_the_probability_two_cauchy_means_give(a, b):
    """With 2 replicates each mean's posterior is Cauchy (Student's t, 1 degree of freedom) about the replicates'
    mean, scaled by their standard error; the difference of two Cauchys is Cauchy with the scales added, so the
    probability has a closed form to check the draws against."""
    a, b = np.array(a), np.array(b)
    scale = (a.std(ddof=1) + b.std(ddof=1)) / math.sqrt(2)
    exact = 0.5 + math.atan((b.mean() - a.mean()) / scale) / math.pi
    assert stats.p_better(a, b, "max", np.random.default_rng(0)) == pytest.approx(exact, abs=0.01)
    assert stats.p_better(a, b, "min", np.random.default_rng(0)) == pytest.approx(1 - exact, abs=0.01)


def test_more_seeds_make_the_same_gap_surer_and_equal_values_decide_it():
    rng = np.random.default_rng(0)
    noise = np.array([-1.0, 1.0])
    probabilities = [
        stats.p_better(np.tile(20 + noise, n), np.tile(21.5 + noise, n), "max", rng) for n in (1, 2, 5, 20)
    ]
    assert probabilities == sorted(probabilities) and probabilities[0] < 0.75 and probabilities[-1] > 0.99
    assert stats.p_better(np.array([3.0, 3.0]), np.array([4.0, 4.0]), "max", rng) == 1.0, "no noise at all"
    assert stats.p_better(np.array([3.0, 3.0]), np.array([3.0, 3.0]), "max", rng) == 0.5


def test_steps_and_seconds_to_95_percent_of_the_final_metric():
    curves = pd.DataFrame(
        {
            "trial_id": ["a"] * 4 + ["b"] * 2,
            "step": [100, 200, 300, 400, 100, 200],
            "psnr": [10.0, 18.0, 19.5, 20.0, 0.5, 0.1],
            "train_s": [1.0, 2.0, 3.0, 4.0, 1.0, 2.0],
        }
    )
    near = stats.to_near_final(curves[curves.trial_id == "a"], "psnr", "max")
    assert near.iloc[0].steps_to_95 == 300 and near.iloc[0].seconds_to_95 == 3.0  # 19.5 >= 0.95 * 20 = 19
    lower = stats.to_near_final(curves[curves.trial_id == "b"].rename(columns={"psnr": "lpips"}), "lpips", "min")
    assert lower.iloc[0].steps_to_95 == 200  # 0.5 > 0.1 / 0.95


def test_pareto_front_and_effect_sizes():
    points = pd.DataFrame({"psnr": [20.0, 25.0, 24.0, 30.0], "train_s": [10.0, 20.0, 30.0, 40.0]})
    assert stats.pareto_front(points, "psnr", "train_s", "max").tolist() == [True, True, False, True]
    seeds = pd.DataFrame({"frames": [6, 6, 12, 12], "lr": [1, 2, 1, 2], "mean": [20.0, 22.0, 24.0, 26.0]})
    assert stats.effect_sizes(seeds, ["frames", "lr"]) == {"frames": 4.0, "lr": 2.0}


def test_device_seconds_count_gpus_on_a_gpu_and_cores_on_a_cpu():
    trials = pd.DataFrame({"wall_s": [100.0, 100.0], "device": ["cuda", "cpu"]})
    assert stats.device_seconds(trials, cpus=4, gpus=0.5).tolist() == [50.0, 400.0]
    assert np.isclose(stats.device_seconds(trials.drop(columns="device"), 2, 1).sum(), 400.0)


def test_each_levels_best_configuration_is_what_a_stratified_study_compares():
    final = final_table().assign(configuration=[0, 0, 0, 1, 1, 1, 2], frames=[6, 6, 6, 6, 6, 6, 12])
    best = stats.best_per_level(final, "frames", "psnr", "max")
    assert sorted(best.configuration.unique()) == [1, 2], "at 6 frames configuration 1 (mean 25) beats 0 (mean 21)"
    assert sorted(stats.best_per_level(final, "frames", "psnr", "min").configuration.unique()) == [0, 2]


def test_results_pooled_over_scenes():
    final = pd.DataFrame(
        {
            "scene": ["a", "a", "b", "a", "b", "b"],
            "frames": [6, 6, 6, 12, 12, 12],
            "psnr": [20.0, 22.0, 24.0, 25.0, 27.0, 29.0],
        }
    )
    table = scenes.pooled(final, ["frames"], "psnr")
    assert table.frames.tolist() == [6, 12] and table.scenes.tolist() == [2, 2] and table.n.tolist() == [3, 3]
    assert table["mean"].tolist() == [22.0, 27.0]
    assert table.worst_scene_mean.tolist() == [21.0, 25.0] and table.best_scene_mean.tolist() == [24.0, 28.0]
    assert (table.ci_low.iloc[0], table.ci_high.iloc[0]) == pytest.approx(stats.interval([20.0, 22.0, 24.0])[1:])


def test_device_seconds_per_novel_view_from_capture_to_render(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "prepare_report.json").write_text('{"seconds": {"extract": 2.0, "features": 3.0}}')
    spec = parse_spec(
        "name: s\ndata: [a, b]\nspace: {steps: 10, seed: {values: [0, 1]}}\nresources: {cpu: 1}\n"
        "render: {circles: {views: 2}, trials: best}\n"
    )
    trials = pd.DataFrame(
        {"trial_id": ["t1", "t2", "t3"], "scene": ["a", "a", "b"], "wall_s": [10.0, 20.0, 40.0], "device": "cpu"}
    )
    renders = pd.DataFrame({"trial_id": ["t1", "t3"], "views": [4, 2], "fps": [2.0, 4.0]})
    state = {"scenes": {"a": {"data_dir": str(tmp_path / "a")}, "b": {"data_dir": str(tmp_path / "b")}}}
    sweep = SweepData(tmp_path, spec, state, trials, pd.DataFrame(), renders)
    cost = scenes.end_to_end_cost(sweep, gpu_share=1.0).set_index("scene")
    # a: prepare 5 s + trials 30 CPU-s + renders 4 / 2 fps = 37 s for 4 views; b: no prepare report (synthetic)
    assert cost.loc["a"].tolist() == [5.0, 2, 30.0, 2.0, 4, 9.25]
    assert math.isnan(cost.loc["b", "prepare_s"]) and cost.loc["b", "device_s_per_novel_view"] == 40.5 / 2


def test_importance_of_a_sweep_where_no_trial_completed_says_why_rather_than_failing():
    from nerftune.report.importance import importance_table

    spec = parse_spec("name: t\ndata: synthetic:id-card\nspace: {frames: [4, 8], steps: 10}\n")
    table, why = importance_table(pd.DataFrame(), spec, noise_floor=0.1)
    assert table.empty and "needs at least 3 configurations that completed" in why


def test_a_forced_resume_is_said_first_and_kept_in_the_provenance(tmp_path):
    from nerftune.report import _summary
    from nerftune.report.sections import provenance_section

    spec = parse_spec("name: s\ndata: synthetic:id-card\nspace: {steps: 10, seed: {values: [0, 1]}}\n")
    trials = pd.DataFrame({"trial_id": ["t1"], "stop_reason": ["completed"]})
    over = "the data of /data/card changed: 1 frame(s) with another image or camera (images/frame_00003.png)"
    state = {"provenance": {"data_hash": "abc"}, "forced_resumes": [{"at": "2026-12-03T05:00:00+0000", "over": over}]}
    sweep = SweepData(tmp_path, spec, state, trials, pd.DataFrame(), pd.DataFrame())
    assert f"Warning: resumed with --force although {over} (see Provenance)" in _summary(sweep, trials)
    section = provenance_section(sweep, tmp_path)
    rows = pd.read_csv(tmp_path / "provenance.csv").set_index("what").value
    assert rows["resumed with --force, 2026-12-03T05:00:00+0000"] == over and rows["data_hash"] == "abc"
    assert "may not be comparable" in section.notes[0]

    plain = SweepData(tmp_path, spec, {"provenance": {}}, trials, pd.DataFrame(), pd.DataFrame())
    assert "--force" not in _summary(plain, trials) and not provenance_section(plain, tmp_path).notes


def test_each_level_of_an_unordered_dimension_against_the_best_one():
    final = pd.DataFrame(
        {
            "configuration": [0, 0, 1, 1, 2, 2],
            "method": ["nerfacto", "nerfacto", "instant-ngp", "instant-ngp", "vanilla", "vanilla"],
            "psnr": [24.0, 26.0, 21.0, 23.0, 14.0, 16.0],
        }
    )
    compared = stats.against_best_level(final, "method", [], "psnr", "max").set_index("from")
    assert set(compared.index) == {"instant-ngp", "vanilla"} and set(compared.to) == {"nerfacto"}
    assert compared.loc["instant-ngp", "difference"] == 3.0 and compared.loc["vanilla", "difference"] == 10.0
    assert 0.9 < compared.loc["vanilla", "p_better"] < 0.97, "10 dB over 2 seeds a side: likely, not certain"
    expected = scipy_stats.ttest_ind([21.0, 23.0], [24.0, 26.0], equal_var=False).pvalue
    assert compared.loc["instant-ngp", "welch_p"] == pytest.approx(expected)
    lower = stats.against_best_level(final, "method", [], "psnr", "min")  # lower is better: vanilla is the best
    assert set(lower.to) == {"vanilla"} and (lower.difference < 0).all()


def test_an_unordered_dimension_gets_its_own_section_with_levels_side_by_side(tmp_path):
    from nerftune.report.by_dimension import dimension_sections

    spec = parse_spec(
        "name: s\ndata: synthetic:id-card\nspace: {frames: [6, 12], poses: [global, per_subset], seed: [0, 1], "
        "steps: 10}\nreplicates: seed\nsearch: {algorithm: grid}\nscheduler: {type: none}\n"
    )
    final = pd.DataFrame(
        {
            "configuration": [0, 0, 1, 1, 2, 2, 3, 3],
            "frames": [6, 6, 6, 6, 12, 12, 12, 12],
            "poses": ["global", "global", "per_subset", "per_subset"] * 2,
            "seed": [0, 1] * 4,
            "psnr": [20.0, 21.0, 16.0, 17.0, 24.0, 25.0, 23.0, 24.0],
        }
    )
    sweep = SweepData(tmp_path, spec, {}, final.assign(trial_id=list("abcdefgh")), pd.DataFrame(), pd.DataFrame())
    sections = {section.title: section for section in dimension_sections(sweep, final, tmp_path)}
    assert set(sections) == {"Quality against frames", "Quality against poses"}
    poses = sections["Quality against poses"]
    assert poses.figures == ["psnr_by_poses.png"] and (tmp_path / "psnr_by_poses.png").stat().st_size > 5000
    compared = pd.read_csv(tmp_path / "compare_poses.csv")
    per_frames = compared[compared.frames.astype(str) != "(best per level)"].set_index("frames")
    assert per_frames.loc["6", "from"] == "per_subset" and per_frames.loc["6", "to"] == "global"
    assert per_frames.loc["6", "difference"] == 4.0 and per_frames.loc["12", "difference"] == 1.0
    assert "against the best one" in " ".join(poses.notes)
    by_poses = pd.read_csv(tmp_path / "by_poses.csv")
    assert sorted(by_poses.poses.unique()) == ["global", "per_subset"] and (by_poses.n == 2).all()


def test_the_summary_of_a_study_names_its_best_configuration_with_its_noise(tmp_path):
    from nerftune.report import _summary

    spec = parse_spec(
        "name: s\ndata: synthetic:id-card\nspace: {frames: [6, 12], seed: [0, 1], steps: 10}\nreplicates: seed\n"
    )
    trials = final_table().iloc[:6].assign(seed=[0, 1, 2] * 2, stop_reason="completed")
    sweep = SweepData(tmp_path, spec, {}, trials, pd.DataFrame(), pd.DataFrame())
    assert "Best configuration (frames=12): psnr 25.000 over 3 seed replicates (23.000 to 27.000; 95 % interval" in (
        _summary(sweep, trials)
    )


def test_the_schedulers_saving_counts_only_trials_that_ended(tmp_path):
    from nerftune.report.sections import cost_section

    spec = parse_spec("name: s\ndata: synthetic:id-card\nspace: {steps: 100, seed: {values: [0, 1, 2]}}\n")
    trials = pd.DataFrame(
        {
            "trial_id": ["t1", "t2", "t3"],
            "configuration": [0, 1, 2],
            "steps_done": [100, 30, 40],
            "target_steps": [100, 100, 100],
            "wall_s": [10.0, 3.0, 4.0],
            "device": "cpu",
            "stop_reason": ["completed", "asha_pruned", "completed"],
        }
    )
    renders = pd.DataFrame(columns=["trial_id", "views", "fps"])
    whole = cost_section(SweepData(tmp_path, spec, {}, trials, pd.DataFrame(), renders), 1.0, tmp_path)
    assert "170 steps trained of the 300 these trials would have trained" in whole.notes[0]
    assert "(57%, the scheduler saved 43%)." in whole.notes[0]
    # interrupted: the third trial may still train its 60 steps left, which the scheduler did not save
    trials.loc[2, "stop_reason"] = "unfinished"
    cut = cost_section(SweepData(tmp_path, spec, {}, trials, pd.DataFrame(), renders), 1.0, tmp_path)
    assert "130 steps trained of the 200 the 2 trials that ended would have trained" in cut.notes[0]
    assert "(65%, the scheduler saved 35%); 1 unfinished trial (40 steps so far)." in cut.notes[0]


STUDY = (
    "name: s\ndata: synthetic:id-card\nspace: {frames: [6, 12], poses: [global, per_subset], masks: [true, false], "
    "seed: [0, 1], steps: 10}\nreplicates: seed\nstratify: frames\n"
)


def _sections(final: pd.DataFrame, tmp_path) -> dict:
    from nerftune.report.by_dimension import dimension_sections

    trials = final.assign(trial_id=[f"t{i}" for i in range(len(final))])
    sweep = SweepData(tmp_path, parse_spec(STUDY), {}, trials, pd.DataFrame(), pd.DataFrame())
    return {section.title: section for section in dimension_sections(sweep, final, tmp_path)}


def _study(rows: list[tuple]) -> pd.DataFrame:
    """Two seeds of each (frames, poses, masks, psnr of seed 0) configuration; seed 1 scores 1 dB more."""
    return pd.DataFrame(
        [
            {"configuration": c, "frames": f, "poses": p, "masks": m, "seed": s, "psnr": psnr + s}
            for c, (f, p, m, psnr) in enumerate(rows)
            for s in (0, 1)
        ]
    )


def test_a_levels_best_configuration_is_taken_within_each_stratum_never_across(tmp_path):
    # per frame count, the best masks setting of each pose source; across frame counts, per_subset at 12 frames
    # (26) would beat global at 6 (22) by 4 dB, which is what the frames did
    final = _study(
        [
            (6, "global", True, 22.0),
            (6, "global", False, 20.0),
            (6, "per_subset", True, 19.0),
            (6, "per_subset", False, 21.0),
            (12, "global", True, 27.0),
            (12, "per_subset", False, 26.0),
        ]
    )
    sections = _sections(final, tmp_path)
    compared = pd.read_csv(tmp_path / "compare_poses.csv")
    best = compared[compared.masks.astype(str) == "(best per level)"].set_index("frames")
    assert sorted(best.index) == [6, 12] and (best.to == "global").all()
    assert best.loc[6, "difference"] == 1.0 and best.loc[12, "difference"] == 1.0
    by_frames = pd.read_csv(tmp_path / "compare_frames.csv")  # the stratum itself: its best per level, as before
    assert (by_frames[by_frames.poses == "(best per level)"].difference == 5.0).all()
    assert sections["Quality against frames"].figures


def test_levels_that_completed_only_in_different_strata_are_not_compared(tmp_path):
    # the scheduler kept global at 6 frames and per_subset at 12: any difference between them is the frames'
    final = _study([(6, "global", True, 22.0), (12, "per_subset", True, 26.0)])
    sections = _sections(final, tmp_path)
    assert not (tmp_path / "compare_poses.csv").exists()
    assert "No two levels of poses completed with the same frames (the study's strata)" in " ".join(
        sections["Quality against poses"].notes
    )
    assert pd.read_csv(tmp_path / "compare_frames.csv").difference.tolist() == [4.0]


def test_importance_says_it_ranks_only_what_the_scheduler_let_finish(tmp_path):
    from nerftune.report.sections import importance_section

    spec = parse_spec(
        "name: s\ndata: synthetic:id-card\nspace: {frames: [6, 12, 24], poses: [global, per_subset], seed: [0, 1], "
        "steps: 10}\nreplicates: seed\nsearch: {algorithm: grid}\nscheduler: {type: none}\n"
    )
    finished = _study([(6, "global", True, 20.0), (12, "global", True, 23.0), (24, "per_subset", True, 24.0)])
    seeds = stats.seed_table(finished, ["frames", "poses"], "psnr")
    for pruned, said in ((0, False), (1, True)):
        trials = finished.assign(stop_reason="completed")
        if pruned:
            trials = pd.concat([trials, pd.DataFrame([{"configuration": 3, "stop_reason": "asha_pruned"}])])
        sweep = SweepData(tmp_path, spec, {}, trials, pd.DataFrame(), pd.DataFrame())
        notes = " ".join(importance_section(sweep, seeds, 1.0, tmp_path).notes)
        assert "fANOVA (Optuna) over 3 configuration means" in notes
        assert ("The scheduler stopped 1 configuration(s) early" in notes) == said, notes


def test_frame_subsets_are_compared_against_the_best_one_not_each_against_the_next(tmp_path):
    """A frame subset's number names a draw of frames, not a size: subset 2 is not "more" than subset 1."""
    from nerftune.report.by_dimension import dimension_sections

    spec = parse_spec(
        "name: s\ndata: synthetic:id-card\nspace: {frames: 6, frame_subset: [0, 1, 2], seed: [0, 1], steps: 10}\n"
        "replicates: seed\nsearch: {algorithm: grid}\nscheduler: {type: none}\n"
    )
    final = pd.DataFrame(
        [
            {"trial_id": f"t{k}{s}", "configuration": k, "frames": 6, "frame_subset": k, "seed": s,
             "psnr": psnr + 0.5 * s, "stop_reason": "completed"}
            for k, psnr in enumerate([20.0, 23.0, 21.0])
            for s in (0, 1)
        ]
    )
    sweep = SweepData(tmp_path, spec, {}, final, pd.DataFrame(), pd.DataFrame())
    (section,) = dimension_sections(sweep, final, tmp_path)
    assert section.title == "Quality against frame_subset"
    compared = pd.read_csv(tmp_path / "compare_frame_subset.csv")
    assert sorted(zip(compared["from"], compared["to"])) == [(0, 1), (2, 1)], "each against subset 1, the best"
    assert any("against the best one" in note for note in section.notes)
    # which frames against which seed: the subsets' means (20.25, 23.25, 21.25) spread far beyond what two seeds
    # 0.5 apart make them spread
    (spread,) = pd.read_csv(tmp_path / "frame_subset_spread.csv").to_dict("records")
    assert (spread["subsets"], spread["seeds"]) == (3, 2)
    assert spread["seed_sd"] == pytest.approx(0.5 / 2**0.5) and spread["from_seeds_alone"] == pytest.approx(0.25)
    assert spread["subset_sd"] == pytest.approx((np.var([20.25, 23.25, 21.25], ddof=1) - 0.125 / 2) ** 0.5)
    assert spread["anova_p"] < 0.01
    assert any("over all trials, the 3 subsets' means spread by 1.53 (sd)" in note for note in section.notes)


def test_subsets_that_differ_no_more_than_their_seeds_add_nothing():
    from nerftune.report.subset_spread import subset_spread

    # the same four seeds' values in every subset, in another order: the subsets' means are equal
    values = [20.0, 21.0, 22.0, 23.0]
    final = pd.DataFrame(
        [{"frame_subset": k, "seed": s, "psnr": values[(s + k) % 4]} for k in range(3) for s in range(4)]
    )
    (row,) = subset_spread(final, [], "psnr").to_dict("records")
    assert row["subset_means_sd"] == pytest.approx(0.0) and row["subset_sd"] == 0.0
    assert row["anova_p"] == pytest.approx(1.0)
    assert len(subset_spread(final[final.seed == 0], [], "psnr")) == 0, "one seed per subset: no seed noise to weigh"


def test_the_noise_is_named_after_the_replicate_dimension(tmp_path):
    from nerftune.report.sections import seed_section

    final = pd.DataFrame(
        [{"trial_id": f"t{c}{k}", "configuration": c, "frames": f, "frame_subset": k, "psnr": 20.0 + c + k,
          "stop_reason": "completed"} for c, f in enumerate([6, 12]) for k in (0, 1)]
    )
    for replicates, title, floor in (
        ("frame_subset", "Noise over frame_subset: the final metric per configuration", "are noise over frame_subset"),
        ("seed", "Seed noise: the final metric per configuration", "are seed noise until"),
    ):
        space = "{frames: [6, 12], frame_subset: [0, 1], steps: 10}" if replicates != "seed" else (
            "{frames: [6, 12], seed: [0, 1], steps: 10}")
        spec = parse_spec(f"name: s\ndata: synthetic:id-card\nspace: {space}\nreplicates: {replicates}\n")
        table = final.rename(columns={"frame_subset": replicates})
        sweep = SweepData(tmp_path, spec, {}, table, pd.DataFrame(), pd.DataFrame())
        seeds = stats.seed_table(table, ["frames"], "psnr")
        section = seed_section(sweep, seeds, stats.pooled_std(seeds), tmp_path)
        assert section.title == title and floor in section.notes[0]


def test_other_dimensions_are_compared_over_the_frame_subsets_with_the_subsets_as_replicates(tmp_path):
    """Subset 1 at 6 frames and subset 1 at 12 are unrelated draws: frames are compared over all subsets, each a
    point (its seeds' mean), never subset by subset, nor by each count's luckiest subset."""
    from nerftune.report.by_dimension import dimension_sections

    spec = parse_spec(
        "name: s\ndata: synthetic:id-card\nspace: {frames: [6, 12], frame_subset: [0, 1, 2], seed: [0, 1], "
        "steps: 10}\nreplicates: seed\nsearch: {algorithm: grid}\nscheduler: {type: none}\n"
    )
    rows = [
        {"trial_id": f"t{f}{k}{s}", "frames": f, "frame_subset": k, "seed": s, "psnr": 20.0 + f / 6 + k + s,
         "stop_reason": "completed"}
        for f in (6, 12) for k in range(3) for s in range(2)
    ]
    final = pd.DataFrame(rows)
    final["configuration"] = final.groupby(["frames", "frame_subset"]).ngroup()
    sweep = SweepData(tmp_path, spec, {}, final, pd.DataFrame(), pd.DataFrame())
    sections = {section.title: section for section in dimension_sections(sweep, final, tmp_path)}
    assert any("Frame subsets pooled" in note for note in sections["Quality against frames"].notes)
    by_frames = pd.read_csv(tmp_path / "by_frames.csv")
    assert "frame_subset" not in by_frames and by_frames.n.tolist() == [3, 3], "the 3 subsets are the replicates"
    assert by_frames["mean"].tolist() == pytest.approx([22.5, 23.5])  # subsets' means 21.5, 22.5, 23.5 (+1)
    (compared,) = pd.read_csv(tmp_path / "compare_frames.csv").to_dict("records")
    assert (compared["from"], compared["to"], compared["n_from"]) == (6, 12, 3)
    assert compared["difference"] == pytest.approx(1.0)
    assert not any("Frame subsets pooled" in note for note in sections["Quality against frame_subset"].notes)
    # the study's answer names a setting, over its subsets, not its luckiest subset
    best, runner_up = answers.best_configuration_lines(final, spec)
    assert best.startswith("best configuration (frames=12): psnr 23.500 over 3 frame subsets (22.500 to 24.500;")
    assert runner_up.startswith("next best (frames=6): psnr 22.500; the best beats it with probability")
