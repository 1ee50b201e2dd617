"""The report's novel views: what the rendered trials show along each camera path, side by side.

One sheet per path (and scene): a row per rendered trial, best first (in the order of the values of `render.per`
first, where the spec renders the best of each), and a column per viewpoint, the same one in every row, from the
least to the most novel for the top row's trial. Novelty depends on each trial's own training frames, so every
image carries its own score. There is no ground truth at a novel viewpoint: these views are shown and placed
against the training trajectory, and scored only by how legible the document's text stays in them (`doc_cer`
against the real view that shows the document largest, `novel_legibility.py`, where the data records its corners).
A table per trial and path: the views, their novelty, legibility and where they lie (on, inside or outside the
training trajectory).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from nerftune.report.data import SweepData
from nerftune.report.page import Section, csv_table
from nerftune.report.plots import plot_view_sheet, settings_text
from nerftune.spec import SCENE

MAX_ROWS = 8  # rendered trials shown per sheet; the table lists them all
MAX_COLUMNS = 8  # viewpoints shown per sheet, spread from the least to the most novel
THUMBNAIL_WIDTH = 240  # pixels: the sheet is a preview; the full renders stay in the trials' folders
LABELS = ("on", "inside", "outside")


def novel_views_section(sweep: SweepData, out: Path) -> Section | None:
    renders = _with_trials(sweep)
    if not len(renders):
        return None
    metric = sweep.spec.metric.name
    section = Section("Novel views", wide=True)
    section.notes.append(
        "Each sheet: a row per rendered trial (best first, or in the order of the values of `render.per`), a "
        "column per viewpoint of the path, the same in every row, from the least to the most novel for the top "
        "row's trial. Under each image: its novelty for that trial (0: a training camera's view, towards 1: far "
        "from all of them), where it lies against the training trajectory (on, inside, outside) and, where the "
        "data records the document's corners and the view shows it large enough to read, its CER: the character "
        "error rate of the document's text against what the real view that shows it largest reads (0: as legible "
        "as that, 1: nothing read). Novel viewpoints have no ground truth: this is their only score; the test-set "
        "metrics are above."
    )
    rows = []
    keys = ["path", SCENE] if SCENE in renders else ["path"]
    for key, group in renders.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        per = [name for name in (sweep.spec.render.per if sweep.spec.render else []) if name in group]
        group = group.sort_values(
            [*per, metric], ascending=[*(True for _ in per), sweep.spec.metric.mode == "min"], na_position="last"
        )
        trials = group.to_dict("records")
        views = {trial["trial_id"]: pd.read_csv(Path(trial["folder"]) / "views.csv") for trial in trials}
        name = "novel_views_" + "_".join(file_part(k) for k in key) + ".png"
        _draw_sheet(trials[:MAX_ROWS], views, sweep, out / name)
        section.figures.append(name)
        if len(trials) > MAX_ROWS:
            section.notes.append(f"{name}: the best {MAX_ROWS} of {len(trials)} rendered trials; all are in the table.")
        rows += [_summary_row(trial, views[trial["trial_id"]], sweep) for trial in trials]
    name, table = csv_table(pd.DataFrame(rows), "novel_views.csv", out)
    section.tables.append((name, table.drop(columns="folder")))  # the page keeps to what fits; the CSV has where
    return section


def _with_trials(sweep: SweepData) -> pd.DataFrame:
    """Rendered paths with views.csv, joined with their trial's row (dimensions and metric)."""
    renders = sweep.renders[[Path(folder, "views.csv").is_file() for folder in sweep.renders.folder]]
    if not len(renders) or not len(sweep.trials):
        return renders.iloc[0:0]
    return renders.merge(sweep.trials, on="trial_id")


def chosen_views(novelty: pd.Series, most: int = MAX_COLUMNS) -> list[int]:
    """The view ids to show: all of them from the least to the most novel, or `most` spread evenly over that order."""
    ordered = novelty.sort_values(kind="stable").index.tolist()
    if len(ordered) <= most:
        return ordered
    return [ordered[int(k)] for k in np.linspace(0, len(ordered) - 1, most).round()]


def _draw_sheet(trials: list[dict], views: dict[str, pd.DataFrame], sweep: SweepData, path: Path) -> None:
    metric = sweep.spec.metric.name
    columns = chosen_views(views[trials[0]["trial_id"]].set_index("view").novelty)
    cells = [
        [_cell(Path(trial["folder"]), views[trial["trial_id"]].set_index("view"), v) for v in columns]
        for trial in trials
    ]
    labels = [f"{trial['trial_id']}\n{_settings(trial, sweep)}\n{metric} {_number(trial[metric])}" for trial in trials]
    plot_view_sheet(cells, labels, [f"view {v}" for v in columns], path)


def _cell(folder: Path, views: pd.DataFrame, view: int) -> tuple[np.ndarray | None, str]:
    """A view's thumbnail and caption; (None, why) where this trial has no such view."""
    if view not in views.index or not (folder / views.at[view, "image"]).is_file():
        return None, "not rendered"
    novelty, label = views.at[view, "novelty"], views.at[view, "label"]
    legibility = views.get("doc_cer", pd.Series(dtype=float)).get(view)
    read = f", CER {legibility:.2f}" if pd.notna(legibility) else ""
    return _thumbnail(folder / views.at[view, "image"]), f"novelty {novelty:.2f} ({label}){read}"


def _summary_row(trial: dict, views: pd.DataFrame, sweep: SweepData) -> dict:
    labels = views.label.value_counts()
    metric = sweep.spec.metric.name
    return {
        "trial_id": trial["trial_id"],
        "path": trial["path"],
        **{name: trial[name] for name in _named(sweep) if name in trial},
        metric: trial[metric],
        "views": len(views),
        "novelty_mean": views.novelty.mean(),
        "novelty_max": views.novelty.max(),
        "doc_cer_mean": views.doc_cer.mean() if "doc_cer" in views else None,  # over the views that read
        **{label: int(labels.get(label, 0)) for label in LABELS},
        "s_per_view": 1.0 / trial["fps"] if trial["fps"] else None,
        "folder": os.path.relpath(trial["folder"], sweep.folder),
    }


def _settings(trial: dict, sweep: SweepData) -> str:
    names = [name for name in _named(sweep) if name in trial]
    return settings_text(names, [trial[name] for name in names])


def _named(sweep: SweepData) -> list[str]:
    """What tells the rendered trials apart: the configuration's dimensions and the replicate (its seed)."""
    return sweep.dimensions + ([sweep.spec.replicates] if sweep.spec.replicates else [])


def _thumbnail(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.width > THUMBNAIL_WIDTH:
            image = image.resize((THUMBNAIL_WIDTH, round(image.height * THUMBNAIL_WIDTH / image.width)))
        return np.asarray(image)


def _number(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.3g}"


def file_part(value) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(value))
