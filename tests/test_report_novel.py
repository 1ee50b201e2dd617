"""The report's novel views on rendered trials made by hand: the sheet, its order, and the table."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nerftune.report import novel, novel_by_novelty
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


def legibility_study(tmp_path, render: str) -> SweepData:
    """6 and 42 frames x 2 seeds, each rendered along `circles`: the 6-frame trials' text reads worse the farther the
    view (doc_cer 0.2 to 0.6 over novelty 0.1 to 0.9), the 42-frame trials' stays near 0.2; a trial the scheduler
    stopped, a render without the column, and views too far to read are left out."""
    spec = parse_spec(SPEC.replace("[6, 12]", "[6, 42]") + render)
    trials, renders = [], []
    for frames, rate in ((6, lambda n: 0.15 + 0.5 * n), (42, lambda n: 0.22 - 0.02 * n)):
        for seed in (0, 1):
            trial_id = f"f{frames}s{seed}"
            novelty = np.linspace(0.1, 0.9, 5)
            read = [round(rate(n) + 0.02 * seed, 4) for n in novelty]
            renders.append(rendered_trial(tmp_path, trial_id, novelty, ["on"] * 5, (9, 9, 9), read[:4] + [None]))
            trials.append({"trial_id": trial_id, "frames": frames, "seed": seed, "configuration": int(frames == 6),
                           "psnr": 20.0, "stop_reason": "completed", "full_test": True})
    renders.append(rendered_trial(tmp_path, "stopped", [0.5], ["on"], (9, 9, 9), [0.99]))
    trials.append({"trial_id": "stopped", "frames": 6, "seed": 2, "configuration": 1, "psnr": 15.0,
                   "stop_reason": "asha_pruned", "full_test": True})
    renders.append(rendered_trial(tmp_path, "older", [0.5], ["on"], (9, 9, 9)))  # rendered before doc_cer existed
    trials.append({"trial_id": "older", "frames": 42, "seed": 3, "configuration": 0, "psnr": 20.0,
                   "stop_reason": "completed", "full_test": True})
    table = pd.DataFrame(trials)
    return SweepData(tmp_path, spec, {}, table, pd.DataFrame(), pd.DataFrame(renders, columns=list(RENDER_COLUMNS)))


def test_novel_views_compare_their_legibility_by_configuration_at_matched_novelty(tmp_path):
    sweep = legibility_study(tmp_path, "render: {circles: {views: 5}, trials: each}\n")
    out = tmp_path / "report"
    out.mkdir()
    final = sweep.trials[sweep.trials.stop_reason == "completed"]
    (section,) = novel_by_novelty.novel_by_novelty_sections(sweep, final, out)

    assert section.title == "Novel views by novelty (doc_cer, path circles)"
    assert (out / section.figures[0]).stat().st_size > 10_000
    table = pd.read_csv(out / "novel_doc_cer_by_novelty_circles.csv")
    assert set(table.band) == {"0 to 0.2", "0.2 to 0.4", "0.4 to 0.6", "0.6 to 0.8"}, "the unread view: no band"
    assert (table.seeds == 2).all() and (table.views == 2).all(), "the stopped trial and the older render left out"
    far = table[table.band == "0.6 to 0.8"].set_index("frames")
    assert far["mean"][6] == pytest.approx(0.15 + 0.5 * 0.7 + 0.01) and far["mean"][42] == pytest.approx(0.216)
    assert far.seed_min[6] == pytest.approx(0.5) and far.seed_max[6] == pytest.approx(0.52), "the seeds' spread"
    slopes = table.drop_duplicates("configuration").set_index("frames").slope
    assert slopes.to_dict() == pytest.approx({6: 0.05, 42: -0.002}, abs=1e-4), "per 0.1 of novelty"
    shown = section.tables[0][1]
    assert shown.frames.tolist() == [42, 6], "the most legible configuration first"
    notes = " ".join(section.notes)
    assert "every trial as it completed; here 4 rendered trials of 2 configurations (2 seeds each)" in notes
    assert "read worse on the more novel views in 2 of them" in notes


def test_novel_legibility_of_the_best_trials_says_its_seeds_are_a_biased_sample(tmp_path):
    sweep = legibility_study(tmp_path, "render: {circles: {views: 5}, trials: best, best_k: 2, per: frames}\n")
    final = sweep.trials[sweep.trials.stop_reason == "completed"]
    (section,) = novel_by_novelty.novel_by_novelty_sections(sweep, final, tmp_path)
    notes = " ".join(section.notes)
    assert "Rendered: each of the 2 best trials per frames, chosen by the test metric" in notes
    assert "render every trial (`render: {trials: each}`)" in notes
    # renders made by hand along another paths file: not the sweep's choice of trials
    by_hand = legibility_study(tmp_path / "by_hand", "render: {paths: card_paths.json}\n")
    (section,) = novel_by_novelty.novel_by_novelty_sections(by_hand, final, tmp_path)
    assert "Rendered by hand (`nerftune render`), not by the sweep: here 4 rendered trials" in " ".join(section.notes)
    # no view read (renders without the column, or all too far): no section
    older = sweep.renders[sweep.renders.trial_id == "older"]
    unread = SweepData(tmp_path, sweep.spec, {}, sweep.trials, pd.DataFrame(), older)
    assert novel_by_novelty.novel_by_novelty_sections(unread, final, tmp_path) == []
