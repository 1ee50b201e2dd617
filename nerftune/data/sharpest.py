"""The sharpest frame near each chosen one: a handheld video blurs whole runs of frames as the phone moves, and an
evenly spaced pick lands on them as often as anywhere. Blur costs SfM its features and the NeRF its detail.

Each evenly spaced frame (or each one of `--fps`) stands for the frames nearer to it than to its neighbours (its
window); the frame kept from a window is the one with the most detail, measured as the variance of the image's
Laplacian at a common small size (the usual blur measure: an edge smeared over several pixels has a weak second
derivative). Frames of one window show nearly the same view, so their scores compare like with like.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from PIL import Image

SCORE_SIZE = 480  # longest side the sharpness is measured at, so that it does not depend on the capture's size


def windows(targets: list[int], total: int) -> list[range]:
    """For each target index (increasing), the source indices nearer to it than to its neighbours; the first and
    last reach as far out as half their spacing. One target per window and no index in two."""
    if len(targets) < 2:
        return [range(t, t + 1) for t in targets]
    bounds = [(a + b) // 2 + 1 for a, b in pairwise(targets)]  # the first index of each next window
    first = max(0, targets[0] - (targets[1] - targets[0]) // 2)
    last = min(total, targets[-1] + (targets[-1] - targets[-2]) // 2 + 1)
    return [range(lo, hi) for lo, hi in zip([first, *bounds], [*bounds, last])]


def sharpness(image: Image.Image) -> float:
    """Variance of the Laplacian of the grey image at `SCORE_SIZE`: high for crisp edges, low for blur."""
    grey = image.convert("L")
    scale = SCORE_SIZE / max(grey.size)
    if scale < 1:
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))))
    g = np.asarray(grey, dtype=np.float32)
    laplacian = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(laplacian.var())


@dataclass
class Picking:
    """Keeps the sharpest frame of each window, as the frames stream past, and what that gained."""

    targets: list[int]  # the evenly spaced (or per-second) indices
    windows: list[range]  # one per target: the candidates
    kept_scores: list[float] = field(default_factory=list)
    target_scores: list[float] = field(default_factory=list)

    @property
    def candidates(self) -> list[int]:
        return [i for window in self.windows for i in window]

    def keep_sharpest(self, frames: Iterable[tuple[int, str, Image.Image]]) -> Iterator[tuple[int, str, Image.Image]]:
        """From (index, name, image) of every candidate in order, the sharpest of each window, in order; only one
        window's best image is held at a time."""
        if all(len(window) == 1 for window in self.windows):
            yield from frames  # nothing to choose from: scoring every frame of a 4K video would cost a minute
            return
        window_of = {i: k for k, window in enumerate(self.windows) for i in window}
        best, current = None, 0
        for index, name, image in frames:
            if window_of[index] != current and best is not None:
                yield self._kept(best)
                best = None
            current = window_of[index]
            score = sharpness(image)
            if index == self.targets[current]:
                self.target_scores.append(score)
            if best is None or score > best[0]:
                best = (score, index, name, image)
        if best is not None:
            yield self._kept(best)

    def _kept(self, best: tuple[float, int, str, Image.Image]) -> tuple[int, str, Image.Image]:
        self.kept_scores.append(best[0])
        return best[1:]

    def describe(self) -> str:
        if not self.kept_scores:
            return "no frame read yet"
        widths = [len(window) for window in self.windows]
        gain = statistics.median(self.kept_scores) / max(statistics.median(self.target_scores), 1e-9)
        return (
            f"the sharpest of {min(widths)} to {max(widths)} neighbouring frames around each of {len(self.windows)} "
            f"evenly spaced ones (median sharpness {gain:.2f}x theirs)"
        )
