"""Each test view's scores beside how novel it is for the trial: `<trial>/test_view_scores.csv`.

The test set is fixed, but how far its views lie from what a trial trained on is not: a trial on 6 frames sees every
test view from farther away than one on 42. Each scoring of the whole test set writes a row per view: its metrics and
its novelty against the trial's training cameras, by the measure `nerftune render` gives novel views (the angle and
the relative distance to the nearest training camera, the score, on / inside / outside the training trajectory).
The report reads them to tell a configuration that renders worse from one whose test views are only farther away.
Novelty is measured on the dataset's own poses (a trial with `poses: per_subset` trains on its own, aligned to them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nerftune import paths
from nerftune.data.dataset import Dataset, pose_matrix
from nerftune.data.poi import recorded_or_look_at
from nerftune.outcomes import METRICS

VIEW_SCORES_FILE = "test_view_scores.csv"
NOVELTY_COLUMNS = ("novelty", "angle_deg", "distance", "label", "nearest_training_frame")


def novelty_of_test_views(dataset: Dataset, train_names: list[str]) -> dict[str, paths.Novelty]:
    """Each test view's novelty against the training frames `train_names`, by its name."""
    by_name = {frame["file_path"]: frame for frame in dataset.frames}
    train = np.stack([pose_matrix(by_name[name]) for name in train_names])
    document = dataset.transforms.get("nerftune", {})
    frame = paths.document_frame(recorded_or_look_at(document, train), document.get("document_normal") or None, train)
    return {name: paths.novelty(pose_matrix(by_name[name]), train, frame) for name in dataset.test_names}


@dataclass(frozen=True)
class ViewScores:
    """A trial's table of test-view scores: what it needs to name each scored view and place it."""

    trial_dir: Path
    train_names: list[str]
    novelty: dict[str, paths.Novelty]  # by the view's name
    names: dict[str, str]  # the view's name by the resolved path of the image it is scored on

    @classmethod
    def of(cls, trial_dir: Path, dataset: Dataset, train_names: list[str]) -> ViewScores:
        names = dataset.names_by_path(dataset.test_names)
        return cls(Path(trial_dir), train_names, novelty_of_test_views(dataset, train_names), names)

    def write(self, step: int, per_view: dict[str, dict[str, float | None]]) -> Path:
        """Add this step's rows (a view per row, `per_view` keyed by image path as `names` is) to the table; an
        evaluation of the same step again (a resumed trial's) replaces its rows."""
        rows = self.rows(step, per_view)
        path = self.trial_dir / VIEW_SCORES_FILE
        earlier = pd.read_csv(path) if path.is_file() else None
        kept = [earlier[earlier.step != step]] if earlier is not None else []
        table = pd.concat([*kept, pd.DataFrame(rows)], ignore_index=True)
        columns = ["step", "view", *(m for m in METRICS if m in table), *NOVELTY_COLUMNS]
        table[columns].to_csv(path, index=False)
        return path

    def rows(self, step: int, per_view: dict[str, dict[str, float | None]]) -> list[dict]:
        """A row per view of one scoring of the test set, as the table has them."""
        return [self._row(step, self.names[image], scores) for image, scores in per_view.items()]

    def _row(self, step: int, name: str, scores: dict[str, float | None]) -> dict:
        view = self.novelty[name]
        return {
            "step": step,
            "view": name,
            **{m: v for m, v in scores.items() if m in METRICS and v is not None and math.isfinite(v)},
            "novelty": view.score,
            "angle_deg": view.angle_deg,
            "distance": view.distance,
            "label": view.label,
            "nearest_training_frame": self.train_names[view.nearest],
        }
