"""The report's novel views by novelty: does the document's text stay legible as the viewpoint leaves the cameras,
and does a configuration (more frames, more steps) keep it legible farther?

Novel viewpoints have no ground truth, but an ID document's text is the same from every side: each rendered view
close enough to read has `doc_cer`, what Tesseract reads in it against what it reads in the real view that shows the
document largest (`novel_legibility.py`), beside its novelty for its trial (views.csv). As for the test views
(`view_novelty`): per configuration and band of novelty, the mean over its rendered seeds of each seed's mean in the
band, with their 95 % interval, and the slope of doc_cer against novelty per seed. Only trials that are compared
elsewhere count (completed, whole test set scored), one section per camera path.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nerftune.report.data import SweepData
from nerftune.report.novel import file_part
from nerftune.report.page import Section
from nerftune.report.view_novelty import SLOPE_UNIT, add_bands, by_band, slopes_by_configuration, trial_slopes

METRIC = "doc_cer"


def novel_by_novelty_sections(sweep: SweepData, final: pd.DataFrame, out: Path) -> list[Section]:
    """A section per camera path whose rendered trials have novel views that read; none without."""
    views = read_views(sweep, final)
    return [_section(sweep, group, str(path), out) for path, group in views.groupby("path", sort=True)]


def read_views(sweep: SweepData, final: pd.DataFrame) -> pd.DataFrame:
    """Every rendered view with a doc_cer, of the trials in `final`: its path, novelty and doc_cer beside the trial's
    configuration and settings."""
    dimensions = sweep.dimensions
    columns = ["trial_id", "path", "configuration", *dimensions, "novelty", METRIC]
    rendered = sweep.renders[sweep.renders.trial_id.isin(final.trial_id)] if len(final) else sweep.renders.iloc[0:0]
    tables = []
    for render in rendered.itertuples():
        views = Path(render.folder, "views.csv")
        if views.is_file():
            table = pd.read_csv(views)
            if METRIC in table:
                tables.append(table.dropna(subset=[METRIC]).assign(trial_id=render.trial_id, path=render.path))
    if not tables:
        return pd.DataFrame(columns=columns)
    views = pd.concat(tables, ignore_index=True)
    return views.merge(final[["trial_id", "configuration", *dimensions]], on="trial_id")[columns]


def _section(sweep: SweepData, views: pd.DataFrame, path: str, out: Path) -> Section:
    dimensions = sweep.dimensions
    bands = by_band(views, dimensions, METRIC)
    slopes = slopes_by_configuration(views, dimensions, METRIC)
    per_seed = views.groupby(["configuration", "trial_id"])[METRIC].mean()
    ranked = per_seed.groupby("configuration").mean().sort_values().index.tolist()  # the most legible first
    section = Section(f"Novel views by novelty ({METRIC}, path {path})")
    section.notes.append(
        f"Novel viewpoints have no ground truth, but the document's text is the same from every side. Each rendered "
        f"view of the path that shows the document large enough to read: its {METRIC} (the character error rate of "
        f"what Tesseract reads in it against what it reads in the real view that shows the document largest; 0: as "
        f"legible as that, 1: nothing read) against its novelty for the trial (0: a training camera's view, towards "
        f"1: far from all of them). Per configuration and band of novelty: the mean over its rendered seeds of each "
        f"seed's mean in the band, with the seeds' 95 % interval in brackets (none with one seed). Tesseract misreads "
        f"some lines of perfect renderings too (about 0.2 on average at 320x240, the README's floor): compare "
        f"configurations with each other, not with 0."
    )
    section.notes.append(_rendered_line(sweep, per_seed, path))
    section.notes.append(_slope_line(views))
    stem = out / f"novel_{METRIC}_by_novelty_{file_part(path)}"
    add_bands(section, views, (bands, slopes), ranked, dimensions, METRIC, stem, kind="novel")
    return section


def _rendered_line(sweep: SweepData, per_seed: pd.Series, path: str) -> str:
    """Which seeds the bands stand on: all of them only where every trial renders; the best K are a biased sample."""
    seeds = per_seed.groupby("configuration").size()
    each = f"{seeds.min()} seeds each" if seeds.min() == seeds.max() else f"{seeds.min()} to {seeds.max()} seeds"
    counted = f"{len(per_seed)} rendered trials of {len(seeds)} configurations ({each})"
    render = sweep.spec.render
    if render is None or render.name != path:
        return f"Rendered by hand (`nerftune render`), not by the sweep: here {counted}, whichever were rendered."
    if render.trials == "each":
        return f"Rendered: every trial as it completed; here {counted}."
    from nerftune.novel_views import rendered_trials_text  # the renderer's modules: only for this line

    return (
        f"Rendered: {rendered_trials_text(sweep.spec)}, chosen by the test metric; here {counted}. A configuration's "
        f"seeds here are its best, and fewer than it ran: its interval is narrower than its seeds' spread. For an "
        f"unbiased comparison render every trial (`render: {{trials: each}}`)."
    )


def _slope_line(views: pd.DataFrame) -> str:
    slopes = trial_slopes(views, METRIC).dropna()
    if not len(slopes):
        return f"No trial's readable novel views span enough novelty for a slope of {METRIC} against it."
    return (
        f"Slope: the change of {METRIC} over {SLOPE_UNIT:g} more novelty within a trial (a least-squares line through "
        f"its readable novel views); over the {len(slopes)} trials with one: median {slopes.median():.3g} (from "
        f"{slopes.min():.3g} to {slopes.max():.3g}); the text read worse on the more novel views in "
        f"{int((slopes > 0).sum())} of them."
    )
