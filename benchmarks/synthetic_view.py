"""The CPU benchmarks' data: the synthetic ID card at a given size, 24 frames, 12 of them for training."""

from __future__ import annotations

from pathlib import Path

from nerftune.data.dataset import load_dataset, write_view
from nerftune.data.synthetic import SceneOptions, write_scene


def synthetic_view(work: Path, width: int, height: int) -> Path:
    """Writes the scene and a 12-frame training view of it under `work`; returns the view's folder."""
    dataset = load_dataset(write_scene(work / "scene", SceneOptions(frames=24, width=width, height=height)))
    return write_view(dataset, dataset.train_indices(12), work / "view")
