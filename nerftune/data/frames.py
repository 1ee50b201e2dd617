"""Frame selection: the fixed test split and the training subsets (pure: the standard library only).

The test set is chosen once per sweep from the whole sequence; a trial's `frames` value then picks its training
frames from the remaining pool. Comparisons across frame counts are only meaningful because every trial is scored on
the same test frames. Which frames of the pool a count takes is the `frame_subset` dimension: 0 (the default) the
evenly spaced ones; 1, 2, ... other subsets that cover the capture as well, one frame drawn from each of `count`
equal stretches of the pool, so a study can tell the frame count from the luck of which frames it got.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence


def interval_test_indices(num_frames: int, every: int) -> list[int]:
    """Every `every`-th frame of the sequence, starting with frame 0 (the LLFF / nerfstudio "interval" convention)."""
    if every < 2:
        raise ValueError(f"test interval must be >= 2, got {every}")
    return list(range(0, num_frames, every))


def train_pool(num_frames: int, test_indices: Sequence[int]) -> list[int]:
    """The frames a trial may train on: every frame that is not in the test set, in sequence order."""
    test = set(test_indices)
    return [i for i in range(num_frames) if i not in test]


def resolve_frame_count(frames: int | float, pool_size: int) -> int:
    """A `frames` value is a count (int >= 1) or a fraction of the pool (float in (0, 1]); returns the count."""
    if isinstance(frames, float):
        if not 0.0 < frames <= 1.0:
            raise ValueError(f"a fractional frames value must lie in (0, 1], got {frames}")
        return max(1, math.floor(frames * pool_size + 0.5))
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if frames > pool_size:
        raise ValueError(f"frames={frames} is more than the {pool_size} frames of the training pool")
    return frames


def select_evenly(pool: Sequence[int], count: int) -> list[int]:
    """`count` frames of `pool` spread evenly over it, always including its first and last frame.

    One frame means the first frame of the pool. Rounding is half-up so that indices are strictly increasing
    (numpy's round-half-to-even could map two neighbours onto the same frame).
    """
    if not 1 <= count <= len(pool):
        raise ValueError(f"cannot pick {count} frames from a pool of {len(pool)}")
    if count == 1:
        return [pool[0]]
    step = (len(pool) - 1) / (count - 1)
    return [pool[math.floor(k * step + 0.5)] for k in range(count)]


def select_subset(pool: Sequence[int], count: int, subset: int = 0) -> list[int]:
    """`count` frames of `pool`: subset 0 is `select_evenly`'s; subset k >= 1 takes one frame from each of `count`
    equal stretches of the pool, drawn by a hash of (k, count, pool size, stretch), the same on every machine and
    version. With `count` the whole pool every subset is the whole pool."""
    if subset == 0:
        return select_evenly(pool, count)
    if not 1 <= count <= len(pool):
        raise ValueError(f"cannot pick {count} frames from a pool of {len(pool)}")
    bounds = [math.floor(j * len(pool) / count) for j in range(count + 1)]  # strictly increasing: count <= pool
    picks = []
    for j in range(count):
        digest = hashlib.sha256(f"{subset}/{count}/{len(pool)}/{j}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
        picks.append(pool[bounds[j] + math.floor(draw * (bounds[j + 1] - bounds[j]))])
    return picks
