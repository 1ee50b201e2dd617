"""How long a sweep's training takes on the CPU, said before launch where it would take hours: nerfacto at
nerfstudio's own settings trains about a step every 4 seconds on a core, so a study that a GPU trains in an afternoon
(`search_spaces/frames.yaml`) would take the CPU weeks.

The rates are nerfacto's on one core of this 2-core machine, each profile with nerfstudio's eager hash grid and with
it compiled (`fast_path: auto` compiles trials of 1000 steps or more), 2026-12-07 (`benchmarks/cpu_profiles.py`). A
step's cost does not depend on the image size. A trial with more CPUs trains faster, but less than in proportion:
the estimate takes it in proportion, so it is the least the training takes at the profile's settings (a spec that
changes the rays a step or the model's size changes the speed too; scoring comes on top, `evaluation_cost.py`).
"""

from __future__ import annotations

import math

from nerftune.machine import cpu_count
from nerftune.plan import concurrency
from nerftune.preflight import Prepared
from nerftune.scoring_progress import duration_text

# nerfacto's steps a second on one core: (eager, compiled hash grid), the medians of 3 measurements each
STEPS_PER_S = {"tiny": (19.0, 32.0), "small": (0.57, 1.1), "default": (0.1, 0.23)}
SLOW_TRAINING_S = 2 * 3600  # above this, the plan says how long the training takes
RATED_METHOD = "nerfacto"


def cpu_training_warning(prepared: Prepared, on_cluster: bool) -> str | None:
    """A warning where the sweep's trials on this machine's CPU would train for more than `SLOW_TRAINING_S`, with
    what to change; None where they would not, or where they train on GPUs, a cluster, or a method not rated."""
    spec = prepared.spec
    on_gpus = prepared.gpus and spec.resources.gpu != 0
    if on_cluster or on_gpus or set(spec.space["method"].choices) != {RATED_METHOD}:
        return None
    compiled = prepared.cpu_compiling[0] != "none"  # the longest trials compile where any does
    per_core = STEPS_PER_S[spec.profile][compiled]
    trial_speed = per_core * spec.resources.cpu
    at_once = concurrency(prepared, cpu_count())
    seconds = math.ceil(spec.trial_count / at_once) * spec.max_steps / trial_speed
    if seconds <= SLOW_TRAINING_S:
        return None
    remedy = (
        f"for a study on the CPU, `profile: tiny` trains about {STEPS_PER_S['tiny'][compiled] / per_core:.0f}x "
        "faster; for nerfacto's own settings, a GPU"
        if spec.profile != "tiny"
        else "train fewer steps or trials, or on a GPU"
    )
    return (
        f"training on the CPU takes up to about {duration_text(seconds)}: up to {spec.max_steps:,} steps a trial, "
        f"{at_once} trial{'s' * (at_once > 1)} at once, nerfacto's {spec.profile} profile at some {per_core:g} "
        f"steps/s a core ({'compiled' if compiled else 'eager'} hash grid, measured on a 2-core machine); {remedy}"
    )
