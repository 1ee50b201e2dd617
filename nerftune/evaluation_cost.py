"""What scoring the whole test set costs, said before launch where it is slow: trials on the CPU.

Training costs the same at any image size (a fixed number of rays per step), but each trial that completes renders
every test image at its full size for its last evaluation. On a CPU that is what a study of a real capture spends
most of its time on: a phone capture prepared at 960 px with 15 test frames is 7.8 million rays a trial, about 14
minutes at the tiny profile's eager rate (5 compiled), where its 450 training steps take half a minute.
"""

from __future__ import annotations

from typing import Iterable

from nerftune.data.dataset import Dataset
from nerftune.data.downscale import factor_to_fit

# one trial of the tiny profile scoring its whole test set (rendering and metrics) on one core of this 2-core machine:
# eager, 9.6 thousand rays a second at 480x360 beside another trial, 8.6 thousand at 1600x1200 alone (2026-12-04);
# its hash grid compiled for scoring (`fast_path.py`), 27 and 32 thousand at 1600x1200 with the fast contraction
# (24 and 25 without it; 2026-12-05). The default profile renders far fewer.
CPU_RAYS_PER_S = 9_000
CPU_COMPILED_RAYS_PER_S = 27_000
SLOW_EVALUATION_S = 240  # above this, a trial's last evaluation is said in the plan


def test_rays(dataset: Dataset) -> int:
    """The rays one evaluation of the whole test set renders: its images' pixels."""
    frames = ({**dataset.transforms, **dataset.frames[index]} for index in dataset.test_indices)
    return sum(int(frame.get("w", 0)) * int(frame.get("h", 0)) for frame in frames)


def cpu_evaluation_warning(datasets: Iterable[Dataset], downscale: int = 1, compiled: bool = False) -> str | None:
    """A warning where the last evaluation of a trial on the CPU takes minutes (`datasets` as trials use them, at
    1/`downscale` of their size already; `compiled`: scored with a compiled hash grid), with the `data.downscale`
    that brings it under `SLOW_EVALUATION_S`; None where it does not."""
    datasets = list(datasets)
    rays = sum(map(test_rays, datasets))
    rate = CPU_COMPILED_RAYS_PER_S if compiled else CPU_RAYS_PER_S
    if rays <= rate * SLOW_EVALUATION_S:
        return None
    images = sum(len(dataset.test_indices) for dataset in datasets)
    factor = factor_to_fit(downscale, rays, rate * SLOW_EVALUATION_S)
    minutes = rays / rate / 60
    return (
        f"each trial that completes renders its {images} test images whole for its last evaluation: "
        f"{rays / 1e6:.1f} million rays, {minutes:.0f} minutes or more on the CPU at the tiny profile's "
        f"{rate // 1000} thousand rays a second{' (compiled)' if compiled else ''}; for a study on the CPU, train "
        f"and score on smaller images: `data: {{path: ..., downscale: {factor}}}`"
    )
