"""How closely a study's replicates pin down a configuration's mean, said before it runs: the half-width of the
mean's 95 % Student-t interval in units of the seed noise (the replicates' standard deviation), t(0.975, n - 1) /
sqrt(n), the interval the report draws. Pure arithmetic, without scipy, so that the plan answers at once."""

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
