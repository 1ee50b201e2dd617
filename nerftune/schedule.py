"""The scheduler: ASHA on training steps (or none), and the rungs, the steps at which ASHA compares trials.

`rungs` computes them without importing Ray, as Ray's ASHA bracket does (checked against Ray 2.60, pinned in
pyproject.toml; tests/test_schedule.py compares the two on every upgrade), so that the plan prints at once and every
trial evaluates exactly where ASHA decides.
"""

from __future__ import annotations

import math

import numpy as np

from nerftune.spec import SweepSpec


def rungs(spec: SweepSpec) -> tuple[int, ...]:
    """ASHA's milestones in steps, ascending (empty without ASHA)."""
    if spec.scheduler.type != "asha":
        return ()
    grace, factor = spec.scheduler.grace_period, spec.scheduler.reduction_factor
    count = int(np.log(spec.max_steps / grace) / np.log(factor) + 1)  # ray.tune.schedulers.async_hyperband._Bracket
    return tuple(sorted(math.ceil(grace * factor**k) for k in range(count)))


def build_scheduler(spec: SweepSpec):
    """Ray Tune's ASHA on `step` (the trials' resource is training steps), or FIFO (no early stopping)."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if spec.scheduler.type == "none":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="step",
        max_t=spec.max_steps,
        grace_period=spec.scheduler.grace_period,
        reduction_factor=spec.scheduler.reduction_factor,
    )
