"""Novel views of real trained trials: renders in the sweep and from the command line, and the evaluation export."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import LR
from nerftune import scoring_progress
from nerftune.evaluate import FIXED_COLUMNS
from nerftune.trials import RECIPE_FILE, milestones, read_recipe

pytestmark = pytest.mark.slow


def sweep_text(scene_dir: Path, name: str, render: str) -> str:
    return f"""\
name: {name}
data: {scene_dir}
profile: tiny
space:
  frames: {{values: [6, 12]}}
  steps: 30
resources: {{cpu: 1, gpu: 0}}
render: {render}
"""


@pytest.fixture(scope="module")
def swept(shared_sweep):
    """The shared sweep: its completed trials rendered a circle of 4 views (and a video) when they completed."""
    return shared_sweep


def completed_dirs(swept) -> list[Path]:
    done = set(swept.table[swept.table.stop_reason == "completed"].trial_id)
    return [d for d in swept.trial_dirs() if json.loads((d / "trial.json").read_text())["trial_id"] in done]


def nerftune_cli(*args) -> tuple[int, str, str]:
    """`nerftune COMMAND ...` in this process (the process boundary is tested with `nerftune sweep`)."""
    from nerftune.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def test_each_completed_trial_renders_its_views_with_novelty(swept):
    assert len(completed_dirs(swept)) >= 1
    rendered = [d for d in swept.trial_dirs() if (d / "renders").exists()]
    assert rendered == completed_dirs(swept), "each trial that completes, and only those"
    for trial in completed_dirs(swept):
        out = trial / "renders" / "circles"
        views = pd.read_csv(out / "views.csv")
        assert len(views) == 4 + 4, "the circle and the trajectory"
        assert set(views.segment) == {"d1_r0.3", "trajectory"}
        assert views.novelty.between(0, 1).all() and set(views.label) <= {"on", "inside", "outside"}
        if json.loads((trial / "trial.json").read_text())["config"]["frames"] == 12:
            # the dataset's trajectory, after its first frame (a test frame before the first training camera), runs
            # along this trial's 12 training cameras
            assert (views[views.segment == "trajectory"].label.iloc[1:] == "on").all(), views.to_string()
        for file_name in views.image:
            image = np.asarray(Image.open(out / file_name))
            assert image.shape == (60, 80, 3) and image.std() > 3, "a rendered view, not a blank one"
        summary = json.loads((out / "render.json").read_text())
        assert summary["views"] == 8 and summary["fps"] > 0 and summary["crop"] is True
        assert views.doc_cer.isna().all() and summary["doc_cer_views"] == 0, "80x60: the card is too small to read"
        assert (out / "path.mp4").stat().st_size > 1000
        # results.csv keeps the render's metrics in the trial's row (and none in a trial that did not render)
        row = swept.table.set_index("trial_id").loc[read_recipe(trial).trial_id]
        assert row.render_fps == pytest.approx(summary["fps"]) and row.novel_doc_cer_views == 0
        assert pd.isna(row.novel_doc_cer)
    assert swept.table[swept.table.stop_reason != "completed"].render_fps.isna().all()


def test_the_report_shows_the_rendered_trials_novel_views_best_first(swept):
    report = swept.folder / "report"
    done = swept.table[swept.table.stop_reason == "completed"].sort_values("psnr", ascending=False)
    table = pd.read_csv(report / "novel_views.csv")
    assert table.trial_id.tolist() == done.trial_id.tolist(), "a row per rendered trial, best first"
    assert (table.views == 8).all() and (table[["on", "inside", "outside"]].sum(axis=1) == 8).all()
    assert table.novelty_mean.between(0, 1).all() and (table.novelty_max >= table.novelty_mean).all()
    for row in table.itertuples():
        views = pd.read_csv(swept.folder / row.folder / "views.csv")
        assert row.novelty_mean == pytest.approx(views.novelty.mean())
    sheet = Image.open(report / "novel_views_circles.png")
    assert sheet.width > sheet.height and np.asarray(sheet.convert("L")).std() > 10
    page = (report / "index.html").read_text()
    assert "<h2 id='novel-views'>Novel views</h2>" in page and "novel_views_circles.png" in page


def test_renders_are_mlflow_artifacts_of_their_trial(swept):
    client = mlflow.MlflowClient(swept.tracking_uri)
    experiment = client.get_experiment_by_name("shared")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "nerftune.trial_id" in r.data.tags]
    completed = [r for r in runs if r.data.tags["stop_reason"] == "completed"]
    assert len(runs) == 4 and len(completed) >= 1
    for run in completed:
        listed = [a.path for a in client.list_artifacts(run.info.run_id, "renders/circles")]
        assert "renders/circles/views.csv" in listed and "renders/circles/path.mp4" in listed
        assert len(client.list_artifacts(run.info.run_id, "renders/circles/images")) == 8


def test_render_command_along_a_paths_file(swept, scene_dir, tmp_path, monkeypatch):
    from nerftune.nerf import lpips

    paths_file = tmp_path / "card.json"
    code, _, err = nerftune_cli(
        "paths", scene_dir, "--radii", "0.2", "--distances", "1.2", "--views", "5", "--out", paths_file
    )
    assert code == 0, err
    trial = completed_dirs(swept)[0]
    loaded_lpips = []  # a render scores nothing: it never loads LPIPS, whose weights it might have to download
    monkeypatch.setattr(lpips, "_real_lpips", lambda *args, **kwargs: loaded_lpips.append(args))
    monkeypatch.setattr(scoring_progress, "FIRST_NOTICE_S", 0.0)  # a line after every view, however fast
    monkeypatch.setattr(scoring_progress, "NOTICE_EVERY_S", 0.0)
    trial_id = json.loads((trial / "trial.json").read_text())["trial_id"]
    outs = {}
    for crop in (True, False):
        outs[crop] = tmp_path / f"crop_{crop}"
        args = ["render", trial, "--paths", paths_file, "--out", outs[crop], "--video"] + (
            [] if crop else ["--no-crop"]
        )
        code, out, err = nerftune_cli(*args)
        assert code == 0, err[-3000:]
        progress = [line for line in out.splitlines() if line.startswith(f"rendering trial {trial_id}: ")]
        assert [line.split(": ")[1].split(" in ")[0] for line in progress] == [f"{n} of 10 views" for n in range(1, 10)]
        # its own lines only: nerfstudio's (dataset index dumps, image caching, DataLoader warnings) in its log
        run_id = [m["mlflow_run_id"] for m in milestones(trial)][-1]
        assert out.splitlines()[len(progress):] == [
            f"{outs[crop]}: 10 views at {json.loads((outs[crop] / 'render.json').read_text())['fps']:.2f} fps "
            f"(step 90), crop {'on' if crop else 'off'}",
            f"MLflow: logged to run {run_id} at {swept.tracking_uri}, under renders/{outs[crop].name}/",
            f"nerfstudio's own output: {trial / 'render.log'}",
        ], out
        assert "Caching" not in err and "DataLoader" not in err, err
    assert "Caching all" in (trial / "render.log").read_text()
    # in the trial's MLflow run: the renders, and their metrics at the checkpoint's step
    client = mlflow.MlflowClient(swept.tracking_uri)
    logged = {item.path for item in client.list_artifacts(run_id, "renders/crop_True")}
    assert {"renders/crop_True/views.csv", "renders/crop_True/render.json", "renders/crop_True/path.mp4"} <= logged
    for o in outs.values():  # under names of their own: the sweep's own renders' values stay as they were
        fps = [(m.step, m.value) for m in client.get_metric_history(run_id, f"render_fps.{o.name}")]
        assert fps == [(90, json.loads((o / "render.json").read_text())["fps"])]
        assert client.get_metric_history(run_id, f"novel_doc_cer_views.{o.name}")[0].value == 0
    assert [m.value for m in client.get_metric_history(run_id, "render_fps")] == [
        json.loads((trial / "renders" / "circles" / "render.json").read_text())["fps"]
    ]
    assert not loaded_lpips
    import av

    with av.open(str(outs[True] / "path.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) == 10
    model_path = json.loads((outs[True] / "camera_path.json").read_text())
    assert model_path["nerftune"]["coordinates"] == "model" and len(model_path["camera_path"]) == 10
    from nerfstudio.cameras.camera_paths import get_path_from_json

    assert get_path_from_json(model_path).camera_to_worlds.shape == (10, 3, 4), "nerfstudio reads the model's path"
    cropped, whole = (
        np.stack([np.asarray(Image.open(p)) for p in sorted((o / "images").iterdir())]).astype(float)
        for o in (outs[True], outs[False])
    )
    assert cropped.shape == whole.shape == (10, 60, 80, 3)
    assert np.abs(cropped - whole).mean() > 0.5, "the crop removes what stands on the table (book, mug)"


def test_a_path_through_a_test_camera_reproduces_the_evaluation_render(swept, tmp_path):
    """The dataset-to-model frame conversion is exact: rendering a test camera as a path gives the eval render."""
    from nerftune.nerf.render import load_trained
    from nerftune.novel_views import render_views
    from nerftune.paths import camera_path_json
    from nerftune.trials import locate, read_recipe

    folder, checkpoint = locate(completed_dirs(swept)[0])
    recipe = read_recipe(folder)
    trainer = load_trained(recipe, checkpoint, tmp_path / "work")
    evaluation = trainer.evaluate([0], previews=1)
    view = json.loads((Path(recipe.view_dir) / "transforms.json").read_text())
    test_frame = next(f for f in view["frames"] if f["file_path"] == view["test_filenames"][0])
    fov = np.degrees(2 * np.arctan(view["h"] / (2 * view["fl_y"])))
    content = camera_path_json(np.array([test_frame["transform_matrix"]]), fov, view["w"], view["h"])
    info = json.loads((folder / "renders" / "circles" / "camera_path.json").read_text())["nerftune"]
    content["nerftune"] = {**info, "segments": [{"name": "test", "first": 0, "count": 1}]}
    render_views(trainer, Path(recipe.view_dir), content, tmp_path / "out", video=False, use_crop=False)
    rendered = np.asarray(Image.open(tmp_path / "out" / "images" / "test_000.png")).astype(float)
    expected = evaluation.previews[0][:, view["w"] : 2 * view["w"]].astype(float)
    assert np.abs(rendered - expected).mean() < 1.0


def test_eval_export_has_a_row_per_trial_and_evaluated_step(swept, tmp_path):
    out = tmp_path / "exports" / "evaluation.csv"  # --out's folder is made
    code, said, err = nerftune_cli("eval", swept.folder, "--out", out, "--views")
    assert code == 0, err[-3000:]
    table = pd.read_csv(out)
    milestones = [s for steps in swept.table.steps_done for s in (30, 60, 90) if s <= steps]
    assert sorted(table.step) == sorted(milestones)
    assert table.trial_id.nunique() == 4 and sorted(table.frames_used.unique()) == [3, 12]
    # eval.max_images thins the milestones before the last: a trial that trained all its steps scored all 3 at 90
    assert (table.test_images == table.step.map({30: 1, 60: 1, 90: 3})).all() and not table.reevaluated.any()
    # `stage` only with a `finetune` stage
    assert set(FIXED_COLUMNS) - {"stage"} <= set(table.columns) and "stage" not in table and LR in table.columns
    assert table.psnr.between(5, 60).all() and (table.fps > 0).all() and (table.rays_per_s > 0).all()
    assert table.checkpoint.map(lambda p: Path(p).is_file()).all(), "keep: 3 keeps every checkpoint"
    # LPIPS weights cannot be downloaded here: the column is empty and one warning says how to provide them
    assert table.lpips.isna().all()
    assert sum("lpips" in line.lower() for line in err.splitlines()) == 1
    assert "alexnet-owt-7be5be79.pth" in err

    # --views: each whole-test-set scoring (here: the last milestone of the trials that trained to the end) by view
    views = pd.read_csv(tmp_path / "exports" / "evaluation_views.csv")
    completed = table[table.test_images == 3]
    assert f"{len(views)} rows ({completed.trial_id.nunique()} trials' test views)" in said
    assert len(views) == 3 * len(completed) and set(zip(views.trial_id, views.step)) == set(
        zip(completed.trial_id, completed.step)
    )
    settings = list(table.columns[: table.columns.get_loc("step")])  # trial_id, method, frames, ..., LR
    assert LR in settings and list(views.columns[: len(settings) + 2]) == [*settings, "step", "view"]
    # the trial's metric is the mean over its views
    by_trial = views.groupby("trial_id").psnr.mean()
    assert by_trial.to_dict() == pytest.approx(completed.set_index("trial_id").psnr.to_dict(), abs=1e-4)
    assert set(views.label) <= {"on", "inside", "outside"} and views.novelty.between(0, 1).all()
    for trial_dir in swept.trial_dirs():  # each view's nearest training frame is one the trial trained on
        recipe = read_recipe(trial_dir)
        view = json.loads((Path(recipe.view_dir) / "transforms.json").read_text())
        trained = {Path(name).name for name in view["train_filenames"]}
        nearest = views[views.trial_id == recipe.trial_id].nearest_training_frame
        assert {Path(name).name for name in nearest} <= trained
    # and each rendered trial's novel views (the sweep renders each trial that completes), as its views.csv has them
    novel = pd.read_csv(tmp_path / "exports" / "evaluation_novel_views.csv")
    assert f"{len(novel)} rows ({len(completed)} rendered trials' novel views)" in said
    assert list(novel.columns[: len(settings) + 2]) == [*settings, "path", "view"] and set(novel.path) == {"circles"}
    for trial_dir in swept.trial_dirs():
        rendered = trial_dir / "renders" / "circles" / "views.csv"
        mine = novel[novel.trial_id == read_recipe(trial_dir).trial_id]
        assert len(mine) == (len(pd.read_csv(rendered)) if rendered.is_file() else 0)
        assert mine.novelty.tolist() == (pd.read_csv(rendered).novelty.tolist() if len(mine) else [])
        assert all((swept.folder / image).is_file() for image in mine.image), "images relative to the sweep's folder"
    assert novel.doc_cer.isna().all() and "doc_cer" in novel, "80x60 views: too small to read"


def test_eval_reevaluates_saved_checkpoints_on_the_full_test_set(swept, tmp_path, monkeypatch):
    monkeypatch.setattr(scoring_progress, "FIRST_NOTICE_S", 0.0)  # a line after every test image, however fast
    monkeypatch.setattr(scoring_progress, "NOTICE_EVERY_S", 0.0)
    out = tmp_path / "again.csv"
    code, said, err = nerftune_cli("eval", swept.folder, "--out", out, "--reevaluate", "--views")
    assert code == 0, err[-3000:]
    table = pd.read_csv(out)
    assert len(table) == swept.table.steps_done.floordiv(30).sum() and table.reevaluated.all()
    # --views: every re-evaluated checkpoint's 3 test views (not only the scorings the trials recorded)
    views = pd.read_csv(tmp_path / "again_views.csv")
    assert len(views) == 3 * len(table)
    means = views.groupby(["trial_id", "step"]).psnr.mean()
    assert means.to_dict() == pytest.approx(table.set_index(["trial_id", "step"]).psnr.to_dict(), abs=1e-4)
    assert views.novelty.between(0, 1).all() and views.nearest_training_frame.notna().all()
    # a line as each checkpoint is scored again, how far and how long; nerfstudio's own output in eval.log
    progress = [line for line in said.splitlines() if " checkpoints in " in line]
    assert len(progress) == len(table) and progress[-1].endswith(")"), said
    last = table.iloc[-1]
    assert progress[-1].startswith(f"trial {last.trial_id} step {last.step}: psnr {last.psnr:.3f} ({len(table)} of ")
    # and within a checkpoint, how far its test set is (3 images here; the checkpoint's own line says the last)
    within = [f"trial {last.trial_id} step {last.step}: {n} of 3 images in " in said for n in (1, 2, 3)]
    assert within == [True, True, False], said
    assert "Caching" not in said + err and "Caching all" in (swept.folder / "eval.log").read_text()
    assert table.psnr.between(5, 60).all()
    assert (table.test_images == 3).all(), "all 3 test images, where the sweep evaluated max_images: 1"
    assert table.data_hash.nunique() == 1 and len(table.data_hash.iloc[0]) == 16, "one dataset, recorded per trial"


def test_eval_refuses_to_reevaluate_a_trial_whose_data_changed(swept, tmp_path):
    """As if its data folder were prepared again: the trial recorded another content than the folder has now."""
    copy = tmp_path / "sweep"
    shutil.copytree(swept.folder, copy, ignore=shutil.ignore_patterns("checkpoint_*", "renders", "nerfstudio"))
    recipe_file = next(copy.glob(f"*/{RECIPE_FILE}"))
    recipe = json.loads(recipe_file.read_text())
    recipe_file.write_text(json.dumps({**recipe, "data_hash": "0123456789abcdef"}))
    code, _, err = nerftune_cli("eval", copy, "--out", tmp_path / "never.csv", "--reevaluate")
    assert code == 2 and not (tmp_path / "never.csv").exists()
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: {recipe_file}: data_hash: trial {recipe['trial_id']} trained on ")
    assert "before its frames changed (data hash 0123456789abcdef, now " in line and "without --reevaluate" in line


@pytest.mark.parametrize(
    "args, expected",
    [
        (["render", "{tmp}/nowhere", "--paths", "{tmp}/p.json"], "is not a trial folder"),
        (["render", "{swept_trial}", "--paths", "{tmp}/missing.json"], "--paths: does not exist"),
        (["eval", "{tmp}"], "holds no nerftune trials"),
        (["eval", "{tmp}/nowhere", "--reevaluate"], "SWEEP_DIR: is not a folder"),
    ],
)
def test_bad_render_and_eval_input_is_one_line(args, expected, swept, tmp_path):
    values = {"tmp": tmp_path, "swept_trial": swept.trial_dirs()[0]}
    code, _, err = nerftune_cli(*(a.format(**values) for a in args))
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], err[-2000:]
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "eval.log").exists(), "no folder, no log made"


def test_an_out_that_cannot_be_written_is_one_line_before_anything_is_rendered(swept, scene_dir, tmp_path):
    """eval, render and export: a file where --out's folder would be is refused before the work, not after it."""
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    paths_file = tmp_path / "p.json"
    assert nerftune_cli("paths", scene_dir, "--views", "1", "--out", paths_file)[0] == 0
    trial = swept.trial_dirs()[0]
    before = sorted(trial.iterdir())
    for args, out, problem in (
        (["eval", swept.folder, "--reevaluate"], a_file / "evaluation.csv", f"{a_file} is a file, not a folder"),
        (["render", trial, "--paths", paths_file], a_file, "is a file"),
        (["export", trial, "--pointcloud"], a_file / "pc", f"{a_file} is a file, not a folder"),
    ):
        code, said, err = nerftune_cli(*args, "--out", out)
        assert code == 2 and "Traceback" not in err and not said, err[-2000:]
        (line,) = [line for line in err.splitlines() if line.startswith("error:")]
        assert line.startswith(f"error: {out}: --out: {problem}") and line.endswith("(choose another path)"), line
    assert sorted(trial.iterdir()) == before, "nothing started: no log, no render, no export"


def test_spec_render_paths_must_be_made_for_the_sweeps_data(scene_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for name in ("transforms.json",):
        (other / name).write_text((scene_dir / name).read_text().replace('"images/', f'"{scene_dir}/images/'))
    code, _, err = nerftune_cli("paths", other, "--views", "2", "--out", tmp_path / "other_paths.json")
    assert code == 0, err
    spec = tmp_path / "spec.yaml"
    spec.write_text(sweep_text(scene_dir, "mismatch", "{paths: other_paths.json}"))
    code, _, err = nerftune_cli("sweep", spec, "--storage", tmp_path / "sweeps", "--dry-run")
    assert code == 2 and "render.paths" in err and "was made for" in err
