"""What every trial of a sweep shares, sent once to Ray's workers (`tune.with_parameters`): plain data that the
trainable reads, and `tuner.trial_plan` builds from a prepared sweep."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerftune.dimensions import SCENE
from nerftune.tracking import TrackingTarget


@dataclass(frozen=True)
class RenderPlan:
    """Novel views rendered at the end of every trial that completes (spec `render: {trials: each}`)."""

    camera_paths: dict[str, dict]  # per scene
    name: str
    video: bool
    crop: bool
    legibility: bool = True  # each view's doc_cer (`novel_legibility.py`)


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of a sweep shares (sent once to the workers with `tune.with_parameters`)."""

    sweep_dir: str  # the sweep's folder in its storage, which every node sees: each trial's folder is in it
    scenes: dict[str, tuple[str, int]]  # each scene's dataset folder and test spacing (one, or a study's several)
    data_hashes: dict[str, str]  # each scene's content fingerprint: a trial refuses other data at the same path
    profile: str
    rungs: tuple[int, ...]  # ASHA's milestones in steps (empty without ASHA)
    eval_every: int
    eval_max_images: int
    train_log_every: int
    cpus_per_trial: float
    fast_path: bool | str = "auto"
    metric: str = "psnr"
    mode: str = "max"
    tracking: TrackingTarget | None = None
    render: RenderPlan | None = None
    init_sources: dict[str, str] = field(default_factory=dict)  # each `init_from` value: its checkpoint file

    def trial_dir(self, tune_trial_dir: str) -> Path:
        """The trial's folder in the sweep's storage, named as Tune names it.

        Tune's own `get_trial_dir()` is a staging folder under /tmp/ray on the trial's node, which only the driver
        uploads to storage, and a reused worker is given yet another one (Ray 2.60's `reset_config`), which nothing
        uploads: a trial's files written there would be missing from the sweep."""
        return Path(self.sweep_dir) / Path(tune_trial_dir).name

    def scene_of(self, config: dict[str, Any]) -> str:
        return config.get(SCENE) or next(iter(self.scenes))

    def milestones(self, steps: int) -> list[int]:
        """The steps at which a trial of `steps` steps evaluates and reports, ending with `steps`."""
        points = {r for r in self.rungs if r < steps} | {steps}
        if self.eval_every:
            points |= set(range(self.eval_every, steps, self.eval_every))
        return sorted(points)

    def eval_indices(self, num_test: int) -> list[int] | None:
        """Which test images to render: all, or `eval_max_images` spread evenly over the test set."""
        if not self.eval_max_images or self.eval_max_images >= num_test:
            return None
        step = num_test / self.eval_max_images
        return [int(k * step) for k in range(self.eval_max_images)]
