"""The scheduler: ASHA on training steps over configurations (`rung_book`, `configuration_asha`), or none; and the
rungs, the steps at which it compares configurations.

`rungs` computes them without importing Ray, as Ray's ASHA bracket does (checked against Ray 2.60, pinned in
pyproject.toml; tests/test_schedule.py compares the two on every upgrade), so that the plan prints at once and every
trial evaluates exactly where ASHA decides.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nerftune.rung_book import RungBook
from nerftune.spec import SweepSpec


def rungs(spec: SweepSpec) -> tuple[int, ...]:
    """ASHA's milestones in steps, ascending (empty without ASHA)."""
    if spec.scheduler.type != "asha":
        return ()
    grace, factor = spec.scheduler.grace_period, spec.scheduler.reduction_factor
    count = int(np.log(spec.max_steps / grace) / np.log(factor) + 1)  # ray.tune.schedulers.async_hyperband._Bracket
    return tuple(sorted(math.ceil(grace * factor**k) for k in range(count)))


# in a folder of its own: on resume Ray copies every top-level .json and .pkl of the experiment folder into its
# staging folder and later back, which would put a stale book over the one the scheduler keeps up to date
RUNG_BOOK_FILE = "nerftune-scheduler/rungs.json"


def build_scheduler(spec: SweepSpec, experiment_dir: Path):
    """Successive halving of configurations on `step`, within strata and over replicate means (or FIFO)."""
    from ray.tune.schedulers import FIFOScheduler

    from nerftune.configuration_asha import ConfigurationASHA

    if spec.scheduler.type == "none":
        return FIFOScheduler()
    return ConfigurationASHA(
        RungBook(
            [r for r in rungs(spec) if r < spec.max_steps],
            len(spec.replicate_values),
            spec.scheduler.reduction_factor,
            spec.metric.mode,
        ),
        spec.metric.name,
        list(spec.stratify),
        str(experiment_dir / RUNG_BOOK_FILE),
    )
