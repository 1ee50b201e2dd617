"""How closely a study's replicates pin down a configuration's mean, said before it runs: the half-width of the
mean's 95 % Student-t interval in units of the seed noise (the replicates' standard deviation), t(0.975, n - 1) /
sqrt(n), the interval the report draws; and how far inside the tolerance a level must lie for the report to call it
surely enough. Pure arithmetic, without scipy, so that the plan answers at once."""

from __future__ import annotations

import math

T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262)  # Student's t, 1 to 9 degrees of freedom


def half_width(replicates: int) -> float:
    """The 95 % interval of a mean of `replicates` (2 or more) values: the mean, give or take this many of their
    standard deviations."""
    degrees = replicates - 1
    # beyond the table, the first terms of the t quantile's expansion about the normal's (within 0.13 %)
    t = T_975[degrees - 1] if degrees <= len(T_975) else 1.96 + 2.372 / degrees + 2.823 / degrees**2
    return t / math.sqrt(replicates)


def precision_line(replicates: int, dimension: str) -> str:
    """The plan's line: how wide a configuration's interval will be, against the seed noise, and with more seeds."""
    unit = "seeds" if dimension == "seed" else f"values of {dimension}"
    noise = "seed noise" if dimension == "seed" else "replicate noise"
    line = (
        f"replicates: {replicates} {unit} per configuration: a configuration's mean will be known to within "
        f"{half_width(replicates):.1f} times the {noise} either way (its 95 % interval; the noise: the "
        "replicates' standard deviation)"
    )
    more = [n for n in (3, 5) if n > replicates]
    if more:
        line += "; " + ", ".join(f"with {n}: {half_width(n):.1f} times" for n in more)
    return line


# the 0.9 quantile of T - T' for two independent Student t's with n - 1 degrees, n = 2 to 10: how many standard
# errors apart two means of n replicates must lie for the report to call one surely on its side of the other
# (`report.enough.difference_quantile`, which a test holds this table to); beyond, a fit in 1 / (n - 1) about the
# normal's 1.2816 x sqrt(2) (within 0.01 % from 11 on)
DIFFERENCE_90 = (6.155, 3.040, 2.504, 2.291, 2.177, 2.107, 2.059, 2.025, 1.999)


def sure_margin(replicates: int) -> float:
    """How far inside the tolerance, in replicate standard deviations, a level's mean must lie for the report to
    call it surely enough (within the tolerance of the most with probability 0.9) with `replicates` a level."""
    if replicates <= len(DIFFERENCE_90) + 1:
        quantile = DIFFERENCE_90[replicates - 2]
    else:
        degrees = replicates - 1
        quantile = 1.2816 * math.sqrt(2) * (1 + 0.829 / degrees + 0.856 / degrees**2)
    return quantile / math.sqrt(replicates)


def enough_line(replicates: int, dimension: str, costly: list[str], tolerance: str) -> str:
    """The plan's line on how many frames (steps) are enough: what the replicates let the report call surely so."""
    noise = "seed noise" if dimension == "seed" else "replicate noise"
    line = (
        f"how many {' and '.join(costly)} are enough: the report calls fewer surely enough (within {tolerance} of the "
        f"most) only where their mean lies {sure_margin(replicates):.1f} times the {noise} inside that"
    )
    more = [n for n in (3, 5) if n > replicates]
    if more:
        line += "; " + ", ".join(f"with {n}: {sure_margin(n):.1f} times" for n in more)
    return line
