"""The report's novel views on rendered trials made by hand: the sheet, its order, and the table."""

import numpy as np
import pandas as pd
from PIL import Image

from nerftune.report import novel
from nerftune.report.data import RENDER_COLUMNS, SweepData
from nerftune.spec import parse_spec

SPEC = "name: s\ndata: synthetic:id-card\nspace: {frames: [6, 12], seed: [0, 1], steps: 10}\nreplicates: seed\n"


def rendered_trial(folder, trial_id, novelty, labels, colour, doc_cer=None):
    """A trial's renders/circles: one flat-coloured image per view, views.csv (`doc_cer`: its column, as renders
    of a version before it lack it) and render.json's figures."""
    out = folder / trial_id / "renders" / "circles"
    (out / "images").mkdir(parents=True)
    rows = []
    for view, (score, label) in enumerate(zip(novelty, labels)):
        Image.new("RGB", (64, 48), colour).save(out / "images" / f"v{view}.png")
        rows.append({"view": view, "image": f"images/v{view}.png", "novelty": score, "label": label})
    views = pd.DataFrame(rows)
    if doc_cer is not None:
        views["doc_cer"] = doc_cer
    views.to_csv(out / "views.csv", index=False)
    return {"trial_id": trial_id, "path": "circles", "folder": out, "views": len(rows), "fps": 0.5}


def test_the_sheet_shows_the_best_trial_first_and_the_same_viewpoints_from_least_to_most_novel(tmp_path):
    spec = parse_spec(SPEC)
    trials = pd.DataFrame(
        {
            "trial_id": ["weak", "good"],
            "frames": [6, 12],
            "seed": [0, 1],
            "psnr": [18.0, 24.0],
            "stop_reason": "completed",
        }
    )
    renders = pd.DataFrame(
        [
            rendered_trial(tmp_path, "weak", [0.9, 0.1, 0.5], ["outside", "on", "inside"], (255, 0, 0)),
            rendered_trial(
                tmp_path, "good", [0.8, 0.0, 0.6], ["outside", "on", "inside"], (0, 0, 255), [0.5, 0.1, None]
            ),
        ],
        columns=list(RENDER_COLUMNS),
    )
    (tmp_path / "weak" / "renders" / "circles" / "images" / "v2.png").unlink()  # a view that was not rendered
    out = tmp_path / "report"
    out.mkdir()
    section = novel.novel_views_section(SweepData(tmp_path, spec, {}, trials, pd.DataFrame(), renders), out)

    assert section.figures == ["novel_views_circles.png"] and section.wide
    sheet = np.asarray(Image.open(out / "novel_views_circles.png").convert("RGB")).astype(int)
    blue = (sheet[..., 2] > 200) & (sheet[..., 0] < 60)
    red = (sheet[..., 0] > 200) & (sheet[..., 2] < 60)
    assert blue.sum() > 0 and red.sum() > 0
    assert np.nonzero(blue.any(axis=1))[0].max() < np.nonzero(red.any(axis=1))[0].min(), "best trial's row on top"
    assert red.sum() < 0.8 * blue.sum(), "the unrendered view is left empty"

    table = pd.read_csv(out / "novel_views.csv")
    assert table.trial_id.tolist() == ["good", "weak"]
    good = table.iloc[0]
    assert (good.frames, good.seed, good.views, good.on, good.inside, good.outside) == (12, 1, 3, 1, 1, 1)
    assert good.novelty_mean == np.mean([0.8, 0.0, 0.6]) and good.novelty_max == 0.8 and good.s_per_view == 2.0
    assert good.doc_cer_mean == 0.3, "over the views that show the document large enough to read"
    assert np.isnan(table.iloc[1].doc_cer_mean), "renders without the column"
    assert good.folder == "good/renders/circles"
    assert "folder" not in section.tables[0][1], "the page leaves the long folder names to the CSV"


def test_the_viewpoints_shown_run_from_the_least_to_the_most_novel():
    novelty = pd.Series([0.5, 0.1, 0.9, 0.3], index=[10, 11, 12, 13])
    assert novel.chosen_views(novelty) == [11, 13, 10, 12]
    many = pd.Series(np.linspace(1, 0, 20), index=range(20))  # view 19 the least novel, view 0 the most
    shown = novel.chosen_views(many, most=5)
    assert len(shown) == 5 and shown[0] == 19 and shown[-1] == 0
    assert list(many[shown]) == sorted(many[shown])


def test_a_sweep_without_renders_has_no_novel_views_section(tmp_path):
    trials = pd.DataFrame({"trial_id": ["a"], "psnr": [20.0]})
    sweep = SweepData(tmp_path, parse_spec(SPEC), {}, trials, pd.DataFrame(), pd.DataFrame(columns=RENDER_COLUMNS))
    assert novel.novel_views_section(sweep, tmp_path) is None
