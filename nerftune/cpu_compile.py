"""When `fast_path: auto` compiles nerfacto's hash grid for trials on the CPU: decided the same way by the plan
before launch and by each trial (no torch imported here).

Compiling costs a machine's first trial 15 s for scoring alone, about 30 s with training (torch keeps the kernels on
disk: 2.5 to 3 s for a new worker after that, nothing for a worker's next trial of the same model), and it pays
where it saves more (`benchmarks/cpu_scoring.py`, `benchmarks/cpu_training.py`, one core of this 2-core machine):
- scoring: a compiled grid renders about 4x the rays a second, so it is compiled for scoring wherever the test
  set is large enough that eager code would take half a minute or more;
- training: the tiny profile trains at 1.8x the steps a second compiled (about 35 against 20), 22 ms saved a
  step: compiling pays after some 150 steps with the kernels on disk, 1500 on a machine's first trial. Trials of
  `TRAINING_COMPILE_STEPS` or more compile for training too; shorter ones (the demo's) stay eager code's.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from nerftune.data.dataset import Dataset
from nerftune.evaluation_cost import test_rays
from nerftune.fast_path_setting import MEANINGS, compiles_everywhere
from nerftune.nerf.methods import has_hash_grid

SCORING_COMPILE_RAYS = 250_000
TRAINING_COMPILE_STEPS = 1_000


def compiles_training(fast_path: bool | str, steps: int) -> bool:
    """Whether a CPU trial of `steps` training steps (of a model with nerfstudio's torch hash grid) trains with
    its grid compiled: `fast_path: true` or a named kind, or auto for a trial long enough to pay."""
    return compiles_everywhere(fast_path) or (fast_path == "auto" and steps >= TRAINING_COMPILE_STEPS)


def compiles_scoring(fast_path: bool | str, steps: int, rays: int) -> bool:
    """Whether a CPU trial scores a test set of `rays` rays with its grid compiled (it does wherever it trains so)."""
    return compiles_training(fast_path, steps) or (fast_path == "auto" and rays >= SCORING_COMPILE_RAYS)


def cpu_compiling(
    fast_path: bool | str, methods: Sequence[str], steps: tuple[int, int], datasets: Iterable[Dataset]
) -> tuple[str, str]:
    """What the trials of a sweep on the CPU compile, as (training, scoring), each "all", "some" or "none":
    `steps` is the shortest and the longest trial's training steps."""
    if not all(map(has_hash_grid, methods)):
        return "none", "none"
    rays = [test_rays(dataset) for dataset in datasets]
    training = _share([compiles_training(fast_path, count) for count in steps])
    scoring = _share([compiles_scoring(fast_path, count, size) for count in steps for size in rays])
    return training, scoring


def _share(decisions: list[bool]) -> str:
    return "all" if all(decisions) else "some" if any(decisions) else "none"


def plan_text(fast_path: bool | str, training: str, scoring: str) -> str:
    """The plan's `fast path:` value: the setting (as a spec writes it) and, on the CPU, what it compiles."""
    if fast_path in MEANINGS:
        return f"{fast_path} ({MEANINGS[fast_path]}; every trial of a method with a hash grid)"
    fast_path = str(fast_path).lower()
    if training == scoring == "none":
        return fast_path
    if training == "all":
        return f"{fast_path} (on the CPU: training and scoring compiled)"
    if training == "some":
        scored = "scoring compiled" if scoring == "all" else "and their scoring"
        trials = f"trials of {TRAINING_COMPILE_STEPS} steps or more"
        return f"{fast_path} (on the CPU: training compiled for {trials}, {scored})"
    return f"{fast_path} (on the CPU: scoring compiled{' for the larger test sets' if scoring == 'some' else ''})"
