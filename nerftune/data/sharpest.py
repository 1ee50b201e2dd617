"""The sharpest frame near each chosen one: a handheld video blurs whole runs of frames as the phone moves, and an
evenly spaced pick lands on them as often as anywhere. Blur costs SfM its features and the NeRF its detail.

Each evenly spaced frame (or each one of `--fps`) stands for the frames nearer to it than to its neighbours (its
window); the frame kept from a window is the one with the most detail, measured as the variance of the image's
Laplacian at a common small size (the usual blur measure: an edge smeared over several pixels has a weak second
derivative). Frames of one window show nearly the same view, so their scores compare like with like. The evenly
spaced frame stays unless another is at least `MARGIN` sharper: where the capture is steady, the picks stay evenly
spaced rather than drifting towards each other on noise.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TypeVar

import numpy as np
from PIL import Image

SCORE_SIZE = 480  # longest side the sharpness is measured at, so that it does not depend on the capture's size
MARGIN = 0.2  # how much sharper than the evenly spaced frame another must be to replace it
T = TypeVar("T")  # a frame as its reader has it: a decoded video frame, or an image
Scored = tuple[float, int, str, T]  # (sharpness, index, name, frame)


def windows(targets: list[int], total: int) -> list[range]:
    """For each target index (increasing), the source indices nearer to it than to its neighbours; the first and
    last reach as far out as half their spacing. One target per window and no index in two."""
    if len(targets) < 2:
        return [range(t, t + 1) for t in targets]
    bounds = [(a + b) // 2 + 1 for a, b in pairwise(targets)]  # the first index of each next window
    first = max(0, targets[0] - (targets[1] - targets[0]) // 2)
    last = min(total, targets[-1] + (targets[-1] - targets[-2]) // 2 + 1)
    return [range(lo, hi) for lo, hi in zip([first, *bounds], [*bounds, last])]


def score_size(width: int, height: int) -> tuple[int, int]:
    """The size a frame is scored at: its longest side `SCORE_SIZE` (or less, where it is smaller)."""
    scale = min(1.0, SCORE_SIZE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian of a grey image at `score_size`: high for crisp edges, low for blur."""
    g = grey.astype(np.float32)
    laplacian = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(laplacian.var())


def image_sharpness(image: Image.Image) -> float:
    return sharpness(np.asarray(image.convert("L").resize(score_size(*image.size))))


@dataclass
class Picking:
    """Keeps a frame of each window as the frames stream past (see `keep_sharpest`), and what that gained."""

    targets: list[int]  # the evenly spaced (or per-second) indices
    windows: list[range]  # one per target: the candidates
    kept_scores: list[float] = field(default_factory=list)
    target_scores: list[float] = field(default_factory=list)

    @property
    def candidates(self) -> list[int]:
        return [i for window in self.windows for i in window]

    def keep_sharpest(
        self, frames: Iterable[tuple[int, str, T]], score: Callable[[T], float]
    ) -> Iterator[tuple[int, str, T]]:
        """From (index, name, frame) of every candidate in order, one frame per window, in order: the evenly spaced
        one, unless another `score`s at least `MARGIN` higher (then the highest). Only one window's evenly spaced
        and best frames are held at a time."""
        if all(len(window) == 1 for window in self.windows):
            yield from frames  # nothing to choose from: scoring every frame of a 4K video would cost a minute
            return
        window_of = {i: k for k, window in enumerate(self.windows) for i in window}
        best = target = None
        current = 0
        for index, name, frame in frames:
            if window_of[index] != current:
                yield from self._choose(best, target)
                best = target = None
            current = window_of[index]
            scored = (score(frame), index, name, frame)
            if index == self.targets[current]:
                target = scored
                self.target_scores.append(scored[0])
            if best is None or scored[0] > best[0]:
                best = scored
        yield from self._choose(best, target)

    def _choose(self, best: Scored | None, target: Scored | None) -> Iterator[tuple[int, str, T]]:
        if best is None:
            return
        kept = target if target is not None and target[0] * (1 + MARGIN) >= best[0] else best
        self.kept_scores.append(kept[0])
        yield kept[1:]

    def describe(self) -> str:
        if not self.kept_scores:
            return "no frame read yet"
        widths = [len(window) for window in self.windows]
        gain = statistics.median(self.kept_scores) / max(statistics.median(self.target_scores), 1e-9)
        return (
            f"each the sharpest of the {min(widths)} to {max(widths)} frames around an evenly spaced one where "
            f"{MARGIN:.0%} sharper than it (median sharpness {gain:.2f}x the evenly spaced frames')"
        )
