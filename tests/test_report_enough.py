"""How many frames are enough (`report/enough.py`), on tables whose answers are worked out by hand."""

import math

import pandas as pd
import pytest

from nerftune.report import main as report_main
from nerftune.report.data import SweepData
from nerftune.report.enough import against_most, enough, enough_lines
from nerftune.spec import parse_spec


def _levels(values: dict) -> pd.DataFrame:
    """Replicates per frame count: {frames: [psnr of each seed]}."""
    rows = [
        {"configuration": c, "frames": frames, "seed": s, "psnr": v}
        for c, (frames, psnr) in enumerate(values.items())
        for s, v in enumerate(psnr)
    ]
    return pd.DataFrame(rows)


def test_each_level_against_the_most_with_two_seeds_a_side_is_a_cauchy_difference():
    # two seeds a side, 1 dB apart: each mean's posterior is Cauchy with scale 0.5, their difference Cauchy with
    # scale 1; 18 frames' mean is exactly 0.5 dB under 42's (probability 1/2 of being within 0.5 dB), and 6 frames'
    # 3.5 dB under, within with probability 1/2 + atan(-3)/pi
    table = against_most(_levels({6: [20, 21], 18: [23, 24], 42: [23.5, 24.5]}), "frames", [], "psnr", "max", 0.5)
    table = table.set_index("frames")
    assert (table["most"] == 42).all() and list(table.n) == [2, 2, 2]
    assert table.loc[6, "difference"] == -3.5 and table.loc[18, "difference"] == -0.5
    assert table.loc[18, "p_within"] == pytest.approx(0.5, abs=0.01)
    assert table.loc[6, "p_within"] == pytest.approx(0.5 + math.atan(-3) / math.pi, abs=0.01)
    assert math.isnan(table.loc[42, "p_within"])


def test_a_level_with_one_replicate_is_left_out_and_a_lone_level_has_nothing_to_compare():
    table = against_most(_levels({6: [20], 18: [23, 24], 42: [23.5, 24.5]}), "frames", [], "psnr", "max", 0.5)
    assert sorted(table.frames) == [18, 42]
    assert not len(against_most(_levels({6: [20], 42: [23.5, 24.5]}), "frames", [], "psnr", "max", 0.5))


def test_the_fewest_within_by_the_means_and_the_fewest_surely_within():
    # 18 frames is within 0.5 dB by the means but no surer than a coin; 30 frames, 0.1 dB under with three close
    # seeds, is surely within
    final = _levels({6: [20, 21, 20.5], 18: [23.8, 24.6, 23.6], 30: [24.3, 24.4, 24.5], 42: [24.4, 24.5, 24.6]})
    table = against_most(final, "frames", [], "psnr", "max", 0.5)
    (line,) = enough_lines(table, "frames", [], "psnr", "max", 0.5)
    assert line.startswith("The most frames compared, 42, scored 24.500 (psnr); 18 is the fewest within 0.5 dB of it")
    p18, p30 = table.set_index("frames").loc[[18, 30], "p_within"]
    assert p18 < 0.9 <= p30
    assert f"truly within with probability {p18:.2f}; 30 is within with probability {p30:.2f}." in line


def test_quality_still_rising_at_the_most_frames_is_said_so():
    table = against_most(_levels({6: [20, 21], 18: [22, 23], 42: [24, 25]}), "frames", [], "psnr", "max", 0.5)
    (line,) = enough_lines(table, "frames", [], "psnr", "max", 0.5)
    p18 = table.set_index("frames").loc[18, "p_within"]
    assert p18 < 0.5
    # 18 frames, 2 dB under, is 1.5 dB beyond the tolerance; at a replicate sd of 0.71 dB, 3 seeds a level (more
    # than the 2 it has) would put that beyond doubt: the difference of two t's with 2 degrees has its 0.9 quantile
    # at 3.04 standard errors, 3.04 x 0.71 / sqrt(3) = 1.24 <= 1.5
    assert line.endswith(
        f"by the means no fewer came within 0.5 dB of it (18, the nearest, is within with probability {p18:.2f}): "
        "quality was still rising at 42, and more frames may help; about 3 replicates a level would settle it, at "
        "the replicate noise of these levels (0.71 dB) if the means hold."
    )


def test_a_metric_where_lower_is_better_is_within_when_it_is_at_most_the_tolerance_higher():
    final = _levels({6: [0.30, 0.32], 18: [0.205, 0.215], 42: [0.20, 0.21]}).rename(columns={"psnr": "lpips"})
    table = against_most(final, "frames", [], "lpips", "min", 0.01).set_index("frames")
    assert table.loc[18, "difference"] == pytest.approx(0.005) and table.loc[18, "p_within"] > 0.5
    assert table.loc[6, "p_within"] < 0.1
    (line,) = enough_lines(table.reset_index(), "frames", [], "lpips", "min", 0.01)
    assert "18 is the fewest within 0.01 of it" in line


def test_no_level_short_of_the_most_surely_within_asks_for_more_replicates():
    # 6 frames' two seeds average 42's but lie 4 dB apart: within by the means, with probability about 0.56
    table = against_most(_levels({6: [22, 26], 42: [23.5, 24.5]}), "frames", [], "psnr", "max", 0.5)
    (line,) = enough_lines(table, "frames", [], "psnr", "max", 0.5)
    assert "6 is the fewest within 0.5 dB of it by the means (24.000), truly within with probability 0.56" in line
    # at the replicate sd pooled over 6 and 42 frames, 2.06 dB, putting a mean 0.5 dB inside the tolerance beyond
    # doubt takes 58 seeds a level (the difference's 0.9 quantile, 1.839 standard errors, x 2.06 / sqrt(58) =
    # 0.498; with 57: 0.502)
    assert line.endswith(
        "none short of 42 is within with probability 0.9 or more: about 58 replicates a level would settle it, at "
        "the replicate noise of these levels (2.1 dB) if the means hold."
    )


def test_each_levels_best_configuration_is_answered_first_and_kept_apart_in_the_table():
    final = pd.concat(
        [
            _levels({6: [20, 21], 42: [24, 25]}).assign(hidden_dim=16),
            _levels({6: [23, 24], 42: [23, 24]}).assign(hidden_dim=32, configuration=lambda t: t.configuration + 2),
        ],
        ignore_index=True,
    )
    best_rows = final[final.configuration.isin([2, 1])]  # each frame count's best width: 32 at 6, 16 at 42
    table, lines = enough(final, best_rows, "frames", ["hidden_dim"], [], "psnr", "max", 0.5)
    assert lines[0].startswith("Over each level's best configuration: the most frames compared, 42, scored 24.500")
    assert lines[1].startswith("At hidden_dim=16: ")
    assert lines[2].startswith("At hidden_dim=32: the most frames compared, 42")
    assert "6 is the fewest within 0.5 dB of it" in lines[2]
    best = table[table.hidden_dim.astype(str) == "(best per level)"].set_index("frames")
    assert best.loc[6, "difference"] == -1.0 and best.loc[42, "most"] == 42


def test_the_quality_section_of_frames_says_how_many_are_enough(tmp_path):
    from nerftune.report.by_dimension import dimension_sections

    spec = parse_spec(
        "name: s\ndata: synthetic:id-card\nspace: {frames: [6, 18, 42], seed: [0, 1], steps: 10}\n"
        "replicates: seed\nsearch: {algorithm: grid}\nscheduler: {type: none}\n"
    )
    final = _levels({6: [20, 21], 18: [23, 24], 42: [23.5, 24.5]})
    sweep = SweepData(tmp_path, spec, {}, final.assign(trial_id=list("abcdef")), pd.DataFrame(), pd.DataFrame())
    (section,) = dimension_sections(sweep, final, tmp_path, tolerance=1.0)
    notes = " ".join(section.notes)
    assert "How many frames are enough" in notes and "no more than 1 dB worse" in notes
    assert "18 is the fewest within 1 dB of it by the means (23.500)" in notes
    assert "about 9 replicates a level would settle it" in notes
    assert section.notes[-1].startswith("To run those replicates: add values to `seed` in the spec and rerun"), notes
    assert pd.read_csv(tmp_path / "enough_frames.csv").frames.tolist() == [6, 18, 42]
    assert not any(note.startswith("To try more") for note in section.notes), "18 came within: nothing to add"
    rising = _levels({6: [20, 21], 18: [22, 23], 42: [24, 25]})
    sweep = SweepData(tmp_path, spec, {}, rising.assign(trial_id=list("abcdef")), pd.DataFrame(), pd.DataFrame())
    (section,) = dimension_sections(sweep, rising, tmp_path, tolerance=0.5)
    assert "quality was still rising at 42" in " ".join(section.notes)
    assert any(note.startswith("To try more: add a larger value to `frames` in the spec") for note in section.notes)
    # without replicates each point is one seed: no answer is given as a fact
    alone = tmp_path / "alone"
    alone.mkdir()
    spec = parse_spec("name: s\ndata: synthetic:id-card\nspace: {frames: [6, 18, 42], steps: 10}\n")
    sweep = SweepData(alone, spec, {}, final.assign(trial_id=list("abcdef")), pd.DataFrame(), pd.DataFrame())
    (section,) = dimension_sections(sweep, final, alone)
    assert "How many frames" not in " ".join(section.notes) and not (alone / "enough_frames.csv").exists()


def test_a_tolerance_that_is_not_positive_is_one_line_and_exit_2(tmp_path, capsys):
    assert report_main([str(tmp_path), "--within", "-0.5"]) == 2
    assert capsys.readouterr().err == "error: command line: --within: is -0.5; it must be positive (e.g. 0.5)\n"


def test_a_studys_lines_say_how_many_frames_are_enough_over_each_levels_best_configuration():
    from nerftune.report.answers import study_lines

    spec = parse_spec(
        "name: s\ndata: synthetic:id-card\nspace: {frames: [6, 42], seed: [0, 1], steps: 10,\n"
        "  pipeline.model.hidden_dim: [16, 32]}\nreplicates: seed\nstratify: frames\n"
    )
    table = pd.concat(
        [
            _levels({6: [20, 21], 42: [24, 25]}).assign(**{"pipeline.model.hidden_dim": 16}),
            _levels({6: [24, 24.2], 42: [23, 24]}).assign(
                **{"pipeline.model.hidden_dim": 32}, configuration=lambda t: t.configuration + 2
            ),
        ],
        ignore_index=True,
    ).assign(stop_reason="completed", full_test=True)
    lines = study_lines(table, spec)
    assert lines[0].startswith("best configuration (frames=42, pipeline.model.hidden_dim=16): psnr 24.500")
    # each frame count's best width: 32 at 6 frames (24.1), 16 at 42 (24.5), 0.4 dB apart
    assert lines[-1].startswith(
        "how many frames are enough (over each level's best configuration): the most frames compared, 42, scored "
        "24.500 (psnr); 6 is the fewest within 0.5 dB of it by the means (24.100)"
    )
    assert len(study_lines(table, spec, tolerance=0.2)) == len(lines)
    assert "no fewer came within 0.2 dB" in study_lines(table, spec, tolerance=0.2)[-1]
    # the spec's own tolerance (the study's question), unless the command line asks another
    strict = parse_spec(
        "name: s\ndata: synthetic:id-card\nspace: {frames: [6, 42], seed: [0, 1], steps: 10,\n"
        "  pipeline.model.hidden_dim: [16, 32]}\nreplicates: seed\nstratify: frames\n"
        "metric: {name: psnr, tolerance: 0.2}\n"
    )
    assert study_lines(table, strict) == study_lines(table, spec, tolerance=0.2)
    assert study_lines(table, strict, tolerance=0.5) == lines
    alone = parse_spec("name: s\ndata: synthetic:id-card\nspace: {frames: [6, 42], seed: [0, 1], steps: 10}\n")
    assert study_lines(table, alone) == [], "without replicates there is no answer to give"


def _curves(values: dict, full_test: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Learning curves of frames=6's two seeds: {step: [psnr of each seed]}, the last step their final value;
    (curves, final) as `SweepData` and `final_trials` hold them. Intermediate milestones score the whole test set
    or (`full_test` False) a few of its images."""
    last = max(values)
    curves = pd.DataFrame(
        [
            {"trial_id": f"t{s}", "configuration": 0, "step": step, "psnr": v, "full_test": full_test or step == last}
            for step, psnr in values.items()
            for s, v in enumerate(psnr)
        ]
    )
    final = pd.DataFrame(
        {"trial_id": ["t0", "t1"], "configuration": 0, "frames": 6, "psnr": values[last], "stop_reason": "completed"}
    )
    return curves, final


def test_how_many_steps_are_enough_is_read_off_the_milestones_that_scored_the_whole_test_set():
    from nerftune.report.steps_enough import steps_from_curves

    curves, final = _curves({100: [15, 16], 200: [22.9, 23.1], 300: [23.2, 23.4]})
    table = steps_from_curves(curves, final, ["frames"], "psnr", "max", 0.5).set_index("steps")
    assert list(table.index) == [100, 200, 300] and (table["most"] == 300).all()
    assert table.loc[200, "difference"] == pytest.approx(-0.3) and table.loc[100, "p_within"] < 0.1
    (line,) = enough_lines(table.reset_index(), "steps", ["frames"], "psnr", "max", 0.5)
    assert line.startswith("At frames=6: the most steps compared, 300, scored 23.300 (psnr); 200 is the fewest")
    # each trial against its own last milestone: two seeds 4 dB apart that each gained 0.2 and 0.25 dB from step
    # 200 to 300 put 200 steps within 0.5 dB surely (the mean gain's posterior: Cauchy about 0.225 with scale
    # 0.025), where their levels taken apart could not tell
    curves, final = _curves({200: [19.8, 23.75], 300: [20.0, 24.0]})
    paired = steps_from_curves(curves, final, ["frames"], "psnr", "max", 0.5).set_index("steps")
    assert paired.loc[200, "difference"] == pytest.approx(-0.225) and paired.paired.all()
    assert paired.loc[200, "p_within"] == pytest.approx(0.5 + math.atan(0.275 / 0.025) / math.pi, abs=0.005)
    apart = against_most(final.drop(columns="psnr").merge(curves).rename(columns={"step": "steps"}), "steps",
                         ["frames"], "psnr", "max", 0.5).set_index("steps")
    assert apart.loc[200, "p_within"] < 0.6
    # intermediate milestones that scored a few test images are no level; nor are the curves where steps is searched
    thinned = _curves({100: [15, 16], 300: [23.2, 23.4]}, full_test=False)
    assert not len(steps_from_curves(*thinned, ["frames"], "psnr", "max", 0.5)), "the last milestone alone"
    assert not len(steps_from_curves(curves, final.assign(steps=300), ["frames", "steps"], "psnr", "max", 0.5))


def test_the_learning_curves_section_says_how_many_steps_are_enough_or_what_would_tell(tmp_path):
    from nerftune.report.sections import curves_section

    spec = parse_spec(
        "name: s\ndata: synthetic:id-card\nspace: {frames: 6, seed: [0, 1], steps: 300}\nreplicates: seed\n"
        "eval: {every: 100}\n"
    )
    curves, final = _curves({100: [15, 16], 200: [22.9, 23.1], 300: [23.2, 23.4]})
    sweep = SweepData(tmp_path, spec, {}, final, curves, pd.DataFrame())
    notes = " ".join(curves_section(sweep, final, tmp_path).notes)
    assert "How many steps are enough, from the curves" in notes and "200 is the fewest within 0.5 dB" in notes
    assert pd.read_csv(tmp_path / "enough_steps_by_milestone.csv").steps.tolist() == [100, 200, 300]
    thinned = spec.model_copy(update={"eval": spec.eval.model_copy(update={"max_images": 2})})
    curves, final = _curves({100: [15, 16], 300: [23.2, 23.4]}, full_test=False)
    sweep = SweepData(tmp_path, thinned, {}, final, curves, pd.DataFrame())
    notes = " ".join(curves_section(sweep, final, tmp_path).notes)
    assert "With `eval: {max_images: 0}` (every milestone scoring the whole test set, not 2 of its images)" in notes
    # a fine-tuning stage scores segmentation images from its first step on: its curves are no one measurement
    tuned = parse_spec(
        "name: s\ndata: synthetic:id-card\nspace: {frames: 6, seed: [0, 1], steps: 300}\nreplicates: seed\n"
        "eval: {every: 100}\nfinetune: {target: segmentation, train: color, steps: 20}\n"
    )
    curves, final = _curves({100: [15, 16], 200: [22.9, 23.1], 300: [23.2, 23.4]})
    sweep = SweepData(tmp_path, tuned, {}, final, curves, pd.DataFrame())
    assert "How many steps" not in " ".join(curves_section(sweep, final, tmp_path).notes)


def test_replicates_to_settle_a_gap_grow_as_it_nears_the_tolerance():
    from nerftune.report.enough import difference_quantile, replicates_to_settle

    # two means of 2 replicates each: their posteriors are Cauchy, their difference Cauchy with twice the scale
    assert difference_quantile(2) == pytest.approx(2 * math.tan(math.pi * 0.4), rel=1e-4)
    assert difference_quantile(100) == pytest.approx(1.2816 * math.sqrt(2), rel=0.01), "near the normal's"
    needed = replicates_to_settle(1.5, math.sqrt(0.5))
    assert difference_quantile(needed) * math.sqrt(0.5 / needed) <= 1.5 < difference_quantile(needed - 1) * math.sqrt(
        0.5 / (needed - 1)
    )
    assert replicates_to_settle(-1.5, math.sqrt(0.5)) == needed, "inside the tolerance or outside, alike"
    assert replicates_to_settle(0.5, math.sqrt(0.5)) > needed
    assert replicates_to_settle(1.5, math.sqrt(0.5), have=needed) == needed + 1, "more than a level has already"
    assert replicates_to_settle(0.01, 1.0) is None, "a gap about the tolerance is no question for more seeds"
    # paired (a trial's milestones): one mean difference, Student's t at 0.9: 3 trials give 1.886 x 1 / sqrt(3) =
    # 1.09 > 1.0, 4 give 1.638 / 2 = 0.82
    assert replicates_to_settle(1.0, 1.0, paired=True) == 4


def test_frames_as_fractions_of_the_pool_read_as_fractions():
    table = against_most(_levels({0.25: [20, 21], 0.5: [23, 24], 1.0: [23.5, 24.5]}), "frames", [], "psnr", "max", 1.0)
    (line,) = enough_lines(table, "frames", [], "psnr", "max", 1.0)
    assert line.startswith("The most frames compared, 1.0, scored 24.000 (psnr); 0.5 is the fewest within 1 dB")
