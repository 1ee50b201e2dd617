"""Novel views of real trained trials: renders in the sweep and from the command line, and the evaluation export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import ROOT, run_cli
from nerftune.evaluate import FIXED_COLUMNS

pytestmark = pytest.mark.slow


def sweep_text(scene_dir: Path, name: str, render: str, steps: int = 60, every: int = 30) -> str:
    return f"""\
name: {name}
data: {scene_dir}
profile: tiny
space:
  frames: {{values: [6, 12]}}
  seed: 0
  steps: {steps}
  pipeline.model.hidden_dim: 32
resources: {{cpu: 1, gpu: 0}}
max_concurrent_trials: 2
eval: {{max_images: 1, every: {every}}}
checkpoints: {{keep: 2}}
render: {render}
"""


@pytest.fixture(scope="module")
def swept(scene_dir, tmp_path_factory):
    """Two tiny trials of 60 steps, evaluated at 30 and 60, each rendering a circle of 4 views when it completes."""
    folder = tmp_path_factory.mktemp("novel")
    spec = folder / "spec.yaml"
    render = "{circles: {radii: [0.3], distances: [1.0], views: 4}, trials: each, video: true}"
    spec.write_text(sweep_text(scene_dir, "views", render))
    result = run_cli(str(spec), "--storage", str(folder / "sweeps"))
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "sweeps" / "views"


def trial_dirs(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.glob("*/trial.json"))


def run_nerftune(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nerftune", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_each_completed_trial_renders_its_views_with_novelty(swept):
    for trial in trial_dirs(swept):
        out = trial / "renders" / "circles"
        views = pd.read_csv(out / "views.csv")
        assert len(views) == 4 + 4, "the circle and the trajectory"
        assert set(views.segment) == {"d1_r0.3", "trajectory"}
        assert views.novelty.between(0, 1).all() and set(views.label) <= {"on", "inside", "outside"}
        for file_name in views.image:
            image = np.asarray(Image.open(out / file_name))
            assert image.shape == (60, 80, 3) and image.std() > 3, "a rendered view, not a blank one"
        summary = json.loads((out / "render.json").read_text())
        assert summary["views"] == 8 and summary["fps"] > 0 and summary["crop"] is True
        assert (out / "path.mp4").stat().st_size > 1000


def test_renders_are_mlflow_artifacts_of_their_trial(swept):
    client = mlflow.MlflowClient(f"sqlite:///{swept.parent / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("views")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "nerftune.trial_id" in r.data.tags]
    assert len(runs) == 2
    for run in runs:
        listed = [a.path for a in client.list_artifacts(run.info.run_id, "renders/circles")]
        assert "renders/circles/views.csv" in listed and "renders/circles/path.mp4" in listed
        assert len(client.list_artifacts(run.info.run_id, "renders/circles/images")) == 8


def test_render_command_along_a_paths_file(swept, scene_dir, tmp_path):
    paths_file = tmp_path / "card.json"
    made = run_nerftune("paths", scene_dir, "--radii", "0.2", "--distances", "1.2", "--views", "5", "--out", paths_file)
    assert made.returncode == 0, made.stderr
    trial = trial_dirs(swept)[0]
    outs = {}
    for crop in (True, False):
        outs[crop] = tmp_path / f"crop_{crop}"
        args = ["render", trial, "--paths", paths_file, "--out", outs[crop], "--video"] + (
            [] if crop else ["--no-crop"]
        )
        result = run_nerftune(*args)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "fps" in result.stdout
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

    folder, checkpoint = locate(trial_dirs(swept)[0])
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
    out = tmp_path / "evaluation.csv"
    result = run_nerftune("eval", swept, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out)
    assert len(table) == 4 and sorted(table.step) == [30, 30, 60, 60]
    assert table.trial_id.nunique() == 2 and sorted(table.frames_used.unique()) == [6, 12]
    assert (table.test_images == 1).all() and not table.reevaluated.any()
    assert set(FIXED_COLUMNS) <= set(table.columns) and "pipeline.model.hidden_dim" in table.columns
    assert table.psnr.between(5, 60).all() and (table.fps > 0).all() and (table.rays_per_s > 0).all()
    assert table.checkpoint.map(lambda p: Path(p).is_file()).all(), "keep: 2 keeps both checkpoints"
    # LPIPS weights cannot be downloaded here: the column is empty and one warning says how to provide them
    assert table.lpips.isna().all()
    assert sum("lpips" in line.lower() for line in result.stderr.splitlines()) == 1
    assert "alexnet-owt-7be5be79.pth" in result.stderr


def test_eval_reevaluates_saved_checkpoints_on_the_full_test_set(swept, tmp_path):
    out = tmp_path / "again.csv"
    result = run_nerftune("eval", swept, "--out", out, "--reevaluate")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out)
    assert len(table) == 4 and table.reevaluated.all() and table.psnr.between(5, 60).all()
    assert (table.test_images == 3).all(), "all 3 test images, where the sweep evaluated max_images: 1"


def test_best_k_trials_are_rendered_after_the_sweep(scene_dir, tmp_path):
    spec = tmp_path / "spec.yaml"
    render = "{circles: {radii: [0.3], distances: [1.0], views: 3}, trials: best, best_k: 1}"
    spec.write_text(sweep_text(scene_dir, "best", render, steps=30, every=0))
    result = run_cli(str(spec), "--storage", str(tmp_path / "sweeps"))
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "best"
    rendered = [t for t in trial_dirs(sweep) if (t / "renders" / "circles" / "views.csv").exists()]
    assert len(rendered) == 1, "only the best trial"
    best = pd.read_csv(sweep / "results.csv").sort_values("best_psnr").trial_id.iloc[-1]
    assert json.loads((rendered[0] / "trial.json").read_text())["trial_id"] == best
    assert "rendered trial" in result.stdout and "(and MLflow)" in result.stdout


@pytest.mark.parametrize(
    "args, expected",
    [
        (["render", "{tmp}/nowhere", "--paths", "{tmp}/p.json"], "is not a trial folder"),
        (["render", "{swept_trial}", "--paths", "{tmp}/missing.json"], "--paths: does not exist"),
        (["eval", "{tmp}"], "holds no nerftune trials"),
    ],
)
def test_bad_render_and_eval_input_is_one_line(args, expected, swept, tmp_path):
    values = {"tmp": tmp_path, "swept_trial": trial_dirs(swept)[0]}
    result = run_nerftune(*(a.format(**values) for a in args))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]


def test_spec_render_paths_must_be_made_for_the_sweeps_data(scene_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for name in ("transforms.json",):
        (other / name).write_text((scene_dir / name).read_text().replace('"images/', f'"{scene_dir}/images/'))
    made = run_nerftune("paths", other, "--views", "2", "--out", tmp_path / "other_paths.json")
    assert made.returncode == 0, made.stderr
    spec = tmp_path / "spec.yaml"
    spec.write_text(sweep_text(scene_dir, "mismatch", "{paths: other_paths.json}"))
    result = run_cli(str(spec), "--storage", str(tmp_path / "sweeps"), "--dry-run")
    assert result.returncode == 2 and "render.paths" in result.stderr and "was made for" in result.stderr
