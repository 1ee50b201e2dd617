"""The memory a trial takes on its machine, said before launch where the trials at once would not fit.

nerfstudio keeps a trial's training images in memory as float32 RGB (12 bytes a pixel), and holds two copies while
it gathers them at the start: 24 bytes a pixel at the peak. Measured here: a trial of 14 training images of 1600x1200
peaked 670 MB above the same trial at 400x300, and a tiny nerfacto process holds about 1.2 GB before its images. A
phone capture prepared at nerftune's defaults (300 frames of 1600x900) is some 10 GB a trial, so two trials at once
do not fit a 16 GB laptop; `data.downscale` divides the images' part by its square.
"""

from __future__ import annotations

from nerftune.data.downscale import factor_to_fit
from nerftune.data.frames import resolve_frame_count
from nerftune.machine import cpu_count, memory_gb
from nerftune.plan import concurrency
from nerftune.preflight import Prepared

PROCESS_GB = 1.2  # a trial's process (torch, nerfstudio, a tiny nerfacto) before its images, measured here
BYTES_PER_PIXEL = 24  # float32 RGB, two copies at the peak
FITS = 0.9  # of the machine's memory: the rest is the sweep's own process, Ray's and the system's


def image_memory_gb(prepared: Prepared) -> float:
    """The most memory one trial's training images take: its largest training set of its largest images."""
    frames = prepared.spec.space["frames"]
    largest = 0.0
    for scene in prepared.scenes.values():
        pool = len(scene.dataset.pool)
        count = max(resolve_frame_count(value, pool) for value in frames.choices or [int(frames.max)])
        width, height = scene.dataset.image_size
        largest = max(largest, count * width * height * BYTES_PER_PIXEL / 1e9)
    return largest


def memory_warning(prepared: Prepared, concurrent: int) -> str | None:
    """A warning where `concurrent` trials at once would take more memory than this machine has, with what to
    change (None: they fit, or its memory is unknown)."""
    have, images = memory_gb(), image_memory_gb(prepared)
    each = PROCESS_GB + images
    if have is None or concurrent * each <= FITS * have:
        return None
    room = FITS * have / concurrent - PROCESS_GB  # for each trial's images, at this concurrency
    smaller = factor_to_fit(prepared.spec.max_downscale, images, room) if room > 0 else None
    fewer = int(FITS * have / each)  # trials at once that fit at this size
    remedies = [f"max_concurrent_trials: {fewer}"] if 0 < fewer < concurrent else []
    remedies += [f"`data: {{path: ..., downscale: {smaller}}}` (smaller training images)"] if smaller else []
    remedies = remedies or ["fewer trials at once"]
    return (
        f"{concurrent} trial(s) at once take about {concurrent * each:.0f} GB of memory ({each:.1f} GB each, most "
        f"of it their training images as float32), and this machine has {have:.0f} GB: the system would kill "
        f"trials; set {' or '.join(remedies)}"
    )


def memory_warnings(prepared: Prepared, on_cluster: bool) -> list[str]:
    """Before launch on this machine: whether its trials at once fit in its memory (a cluster's nodes, and a GPU
    share still to be measured, are not known here)."""
    if on_cluster or (prepared.gpus and prepared.gpu_per_trial is None):
        return []
    warning = memory_warning(prepared, concurrency(prepared, cpu_count()))
    return [warning] if warning else []
