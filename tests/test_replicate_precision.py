"""The plan's line on how closely a study's replicates will pin down a configuration's mean."""

import math

import pytest
from scipy import stats

from nerftune.replicate_precision import half_width, precision_line


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
