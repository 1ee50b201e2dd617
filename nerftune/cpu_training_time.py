"""How long a sweep's training takes on the CPU, said before launch where it would take hours: nerfacto at
nerfstudio's own settings trains about a step every 4 seconds on a core, so a study that a GPU trains in an afternoon
(`search_spaces/frames.yaml`) would take the CPU weeks, and vanilla-nerf trains 10 to 20 times slower than nerfacto at
the tiny profile.

The rates are each method's on one core of this 2-core machine, at each profile, nerfacto's with nerfstudio's eager
hash grid and with it compiled (`fast_path: auto` compiles trials of 1000 steps or more), 2026-12-07
(`benchmarks/cpu_profiles.py`). A step's cost does not depend on the image size. A trial with more CPUs trains faster,
but less than in proportion: the estimate counts it in proportion, so for such trials it is low. It trains every trial
to its last step (ASHA's stops make less) at the profile's settings (a spec that changes the rays a step or the
model's size changes the speed too; scoring comes on top, `evaluation_cost.py`). A sweep over several methods is
judged by its slowest.
"""

from __future__ import annotations

import math

from nerftune.machine import cpu_count
from nerftune.nerf.methods import has_hash_grid
from nerftune.plan import concurrency
from nerftune.preflight import Prepared
from nerftune.scoring_progress import duration_text

# steps a second on one core, the medians of 3 measurements each: (eager, compiled hash grid); the same for a method
# without the grid
STEPS_PER_S = {
    ("nerfacto", "tiny"): (19.0, 32.0),
    ("nerfacto", "small"): (0.57, 1.1),
    ("nerfacto", "default"): (0.1, 0.23),
    ("vanilla-nerf", "tiny"): (1.7, 1.7),
    ("vanilla-nerf", "small"): (0.055, 0.055),
    ("vanilla-nerf", "default"): (0.051, 0.051),
    ("mipnerf", "tiny"): (2.7, 2.7),
    ("mipnerf", "small"): (0.056, 0.056),
    ("mipnerf", "default"): (0.056, 0.056),
}
SLOW_TRAINING_S = 2 * 3600  # above this, the plan says how long the training takes


def cpu_training_warning(prepared: Prepared, on_cluster: bool) -> str | None:
    """A warning where the sweep's trials on this machine's CPU would train for more than `SLOW_TRAINING_S`, with
    what to change; None where they would not, or where they train on GPUs, a cluster, or a method not rated."""
    spec = prepared.spec
    methods = spec.space["method"].choices
    on_gpus = prepared.gpus and spec.resources.gpu != 0
    if on_cluster or on_gpus or any((method, spec.profile) not in STEPS_PER_S for method in methods):
        return None
    compiled = prepared.cpu_compiling[0] != "none"  # the longest trials compile where any does
    slowest = min(methods, key=lambda method: STEPS_PER_S[method, spec.profile][compiled])
    per_core = STEPS_PER_S[slowest, spec.profile][compiled]
    at_once = concurrency(prepared, cpu_count())
    seconds = math.ceil(spec.trial_count / at_once) * spec.max_steps / (per_core * spec.resources.cpu)
    if seconds <= SLOW_TRAINING_S:
        return None
    faster = STEPS_PER_S[slowest, "tiny"][compiled] / per_core
    remedy = (
        f"for a study on the CPU, `profile: tiny` trains about {faster:.0f}x faster; for {slowest}'s own settings, "
        "a GPU"
        if spec.profile != "tiny"
        else "train fewer steps or trials, or on a GPU"
    )
    grid = f"{'compiled' if compiled else 'eager'} hash grid, " if has_hash_grid(slowest) else ""
    which = "the slowest of its methods, " if len(methods) > 1 else ""
    return (
        f"training on the CPU takes up to about {duration_text(seconds)}: up to {spec.max_steps:,} steps a trial, "
        f"{at_once} trial{'s' * (at_once > 1)} at once, {slowest}'s {spec.profile} profile at some {per_core:g} "
        f"steps/s a core ({which}{grid}measured on a 2-core machine); {remedy}"
    )
