"""The plan's line on how closely a study's replicates will pin down a configuration's mean."""

import math

import pytest
from scipy import stats

from nerftune.replicate_precision import enough_line, half_width, precision_line, sure_margin
from nerftune.spec import parse_spec


@pytest.mark.parametrize("replicates", [2, 3, 4, 5, 8, 10, 11, 16, 30, 100])
def test_the_half_width_is_the_student_t_interval_the_report_draws(replicates):
    exact = stats.t.ppf(0.975, replicates - 1) / math.sqrt(replicates)
    assert half_width(replicates) == pytest.approx(exact, rel=2e-3)


def test_the_line_says_the_width_and_what_more_seeds_would_give():
    assert precision_line(2, "seed") == (
        "replicates: 2 seeds per configuration: a configuration's mean will be known to within 9.0 times the seed "
        "noise either way (its 95 % interval; the noise: the replicates' standard deviation); with 3: 2.5 times, "
        "with 5: 1.2 times"
    )
    assert precision_line(3, "seed").endswith("; with 5: 1.2 times")
    assert precision_line(5, "seed").endswith("1.2 times the seed noise either way (its 95 % interval; the noise: "
                                              "the replicates' standard deviation)")
    assert precision_line(4, "capture").startswith("replicates: 4 values of capture per configuration")


@pytest.mark.parametrize("replicates", [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 30, 100])
def test_the_margin_the_plan_gives_is_the_one_the_report_uses(replicates):
    from nerftune.report.enough import SURE, difference_quantile

    assert SURE == 0.9, "the table is of 0.9 quantiles"
    exact = difference_quantile(replicates) / math.sqrt(replicates)
    assert sure_margin(replicates) == pytest.approx(exact, rel=5e-4)


def test_the_plan_says_how_far_inside_the_tolerance_a_level_must_lie_to_be_called_enough():
    assert enough_line(2, "seed", ["frames"], "0.5 dB") == (
        "how many frames are enough: the report calls fewer surely enough (within 0.5 dB of the most) only where "
        "their mean lies 4.4 times the seed noise inside that; with 3: 1.8 times, with 5: 1.0 times"
    )
    assert enough_line(5, "frame_subset", ["frames", "steps"], "0.01").endswith(
        "1.0 times the replicate noise inside that"
    )


def test_the_plan_asks_how_many_frames_and_steps_only_where_the_study_can_tell():
    from nerftune.plan import _costly_questions

    base = "name: s\ndata: synthetic:id-card\nreplicates: seed\nspace: {seed: [0, 1], "
    assert _costly_questions(parse_spec(base + "frames: [6, 12], steps: 100}\n")) == ["frames"]
    assert _costly_questions(parse_spec(base + "frames: 6, steps: [50, 100]}\n")) == ["steps"]
    # every milestone scoring the whole test set: the curves tell the steps too; a few test images: they do not
    curves = base + "frames: [6, 12], steps: 100}\neval: {every: 20"
    assert _costly_questions(parse_spec(curves + "}\n")) == ["frames", "steps (by the learning curves)"]
    assert _costly_questions(parse_spec(curves + ", max_images: 2}\n")) == ["frames"]
    finetuned = curves + "}\nfinetune: {target: segmentation, train: color, steps: 20}\n"
    assert _costly_questions(parse_spec(finetuned)) == ["frames"], "its curves change images at the second stage"
    assert _costly_questions(parse_spec(base + "frames: 6, steps: 100}\n")) == []


def test_the_dry_run_says_it_with_the_specs_tolerance(tmp_path, capsys):
    from nerftune import sweep

    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\ndata: {path: synthetic:id-card, scene: {frames: 24, width: 80, height: 60}}\nprofile: tiny\n"
        "space: {frames: [4, 8], seed: [0, 1], steps: 10}\nreplicates: seed\nmetric: {name: psnr, tolerance: 0.25}\n"
        "resources: {cpu: 1, gpu: 0}\n"
    )
    assert sweep.main([str(spec), "--storage", str(tmp_path / "sweeps"), "--dry-run"]) == 0
    assert (
        "how many frames are enough: the report calls fewer surely enough (within 0.25 dB of the most) only where "
        "their mean lies 4.4 times the seed noise inside that" in capsys.readouterr().out
    )
