"""The mask-error study: corrupt the masks of chosen training frames in a controlled way, and score the test views
near those frames apart from the others.

A researcher's question: "make 5 frames, give one of them a mask that cuts off a corner of the document, and look
at the views around it". A value of the spec's `mask_error` dimension, e.g. `{frames: 1, kind: corner, size: 0.15}`,
corrupts the masks of `frames` training frames (spread evenly over the trial's frames, away from its two ends):

- `corner`: the top-left corner of the mask's bounding box, `size` of its width and height, is cut off;
- `dilate` / `erode`: the mask grows / shrinks by `size` of its bounding box's diagonal (at least 1 pixel);
- `shift`: the mask moves right by `size` of its bounding box's width;
- `none`: the masks stay as they are: the clean baseline, with the same frames chosen and the same split.

Test views whose nearest training camera (the novelty measure of `nerftune render`) is a corrupted frame are scored
as `<metric>_near_error`, the others as `<metric>_elsewhere`. Pure numpy, scipy and PIL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nerftune.data.dataset import Dataset, mask_of
from nerftune.view_scores import novelty_of_test_views

NEAR, ELSEWHERE = "near_error", "elsewhere"  # the suffixes of outcomes.MASK_ERROR_COLUMNS


@dataclass(frozen=True)
class MaskError:
    frames: int
    kind: str
    size: float

    @classmethod
    def from_value(cls, value: Any) -> MaskError | None:
        """The dimension's value: a mapping, or none/null for clean masks."""
        if not isinstance(value, dict):
            return None
        return cls(int(value["frames"]), str(value["kind"]), float(value.get("size", 0)))


def corrupt(mask: np.ndarray, kind: str, size: float) -> np.ndarray:
    """`mask` (H, W bool) with the error applied; an empty mask stays empty."""
    rows, cols = np.nonzero(mask)
    if kind == "none" or not len(rows):
        return mask.copy()
    top, left = rows.min(), cols.min()
    height, width = rows.max() + 1 - top, cols.max() + 1 - left
    if kind == "corner":
        out = mask.copy()
        out[top : top + math.ceil(size * height), left : left + math.ceil(size * width)] = False
        return out
    if kind in ("dilate", "erode"):
        from scipy import ndimage

        radius = max(1, round(size * math.hypot(height, width)))
        grow = ndimage.binary_dilation if kind == "dilate" else ndimage.binary_erosion
        return grow(mask, structure=ndimage.generate_binary_structure(2, 1), iterations=radius)
    if kind == "shift":
        step = max(1, round(size * width))
        out = np.zeros_like(mask)
        out[:, step:] = mask[:, :-step]
        return out
    raise ValueError(f"unknown mask error {kind!r}")


def chosen_frames(train_names: list[str], count: int) -> list[str]:
    """`count` of the training frames, spread evenly between the first and the last (which stay clean)."""
    interior = train_names[1:-1] if len(train_names) - 2 >= count else train_names
    step = len(interior) / count  # the middle of each of `count` equal stretches: one frame is the middle one
    return [interior[int(step * k + step / 2)] for k in range(count)]


def write_corrupted(dataset: Dataset, names: list[str], error: MaskError, out_dir: Path) -> dict[str, str]:
    """The corrupted masks of `names`, written into `out_dir`; returns {frame file_path: its corrupted mask}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    by_name = {frame["file_path"]: frame for frame in dataset.frames}
    written = {}
    for name in names:
        with Image.open(dataset.root / mask_of(by_name[name])) as image:
            mask = np.asarray(image.convert("L")) >= 128
        path = out_dir / Path(name).name
        Image.fromarray(corrupt(mask, error.kind, error.size).astype(np.uint8) * 255).save(path)
        written[name] = str(path.resolve())
    return written


def nearest_training_frames(dataset: Dataset, train_names: list[str]) -> dict[str, str]:
    """Each test view's nearest training frame, by the novelty measure of `nerftune render`."""
    return {name: train_names[view.nearest] for name, view in novelty_of_test_views(dataset, train_names).items()}


def split_metrics(per_view: dict[str, dict[str, float | None]], near: set[str]) -> dict[str, float | None]:
    """The mean of each metric over the views in `near` (`<metric>_near_error`) and over the others."""
    out: dict[str, float | None] = {}
    metrics = sorted({key for scores in per_view.values() for key in scores})
    for group, views in (
        (NEAR, [v for v in per_view if v in near]),
        (ELSEWHERE, [v for v in per_view if v not in near]),
    ):
        for metric in metrics:
            values = [per_view[v][metric] for v in views if per_view[v].get(metric) is not None]
            values = [v for v in values if math.isfinite(v)]
            out[f"{metric}_{group}"] = float(np.mean(values)) if values else None
    return out
