"""The fine-tuning stage: colour adapts to segmentation images while the geometry stays bit-identical."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from PIL import Image

from conftest import refused_sweep, run_cli
from nerftune.data.dataset import load_dataset, write_view
from nerftune.data.document_region import view_regions
from nerftune.finetune import COLOUR_MODULES, geometry_state, segmentation_view
from nerftune.nerf.config import build_config
from nerftune.nerf.loop import NerfTrainer
from nerftune.trials import CHECKPOINT_FILE
from test_document_metrics import scene, without_masks  # noqa: F401 (a fixture)
from test_novel_views import nerftune_cli
from test_tracking import children_and_parent

RGB_STEPS, FINETUNE_STEPS = 150, 150


def depth_renders(trainer: NerfTrainer) -> list[torch.Tensor]:
    loader = trainer.pipeline.datamanager.fixed_indices_eval_dataloader
    loader.image_indices = list(range(len(loader.input_dataset)))
    trainer.pipeline.eval()
    with torch.no_grad():
        return [trainer.pipeline.model.get_outputs_for_camera(camera=camera)["depth"] for camera, _ in loader]


@pytest.mark.slow
def test_fine_tuning_trains_colour_on_segmentation_images_and_leaves_geometry_bit_identical(scene_dir, tmp_path):
    from nerftune.trainable import start_fine_tuning

    dataset = load_dataset(scene_dir)
    train = dataset.train_indices(12)
    total = RGB_STEPS + FINETUNE_STEPS

    def config(view: Path):
        return build_config("nerfacto", view, tmp_path / "ns", total, 0, "cpu", "tiny")

    rgb = NerfTrainer(config(write_view(dataset, train, tmp_path / "dataset")), document_regions=view_regions(dataset))
    rgb.train(RGB_STEPS)
    geometry, depths = geometry_state(rgb.pipeline.model), depth_renders(rgb)
    colour = {k: v.detach().clone() for k, v in rgb.pipeline.model.named_parameters() if k.startswith(COLOUR_MODULES)}

    segmented = segmentation_view(dataset, train, tmp_path)
    tuned = start_fine_tuning(rgb, config(segmented), dataset, segmented, resumed=False)
    assert tuned.step == RGB_STEPS and tuned.colour_only
    # its test images are the segmented ones: the card on black
    test_image = Path(tuned.pipeline.datamanager.eval_dataset.image_filenames[0])
    assert test_image.parent == (scene_dir / "segmentation").resolve()
    before = tuned.evaluate()
    chunks = []
    tuned.train(total, check_every=25, on_chunk=chunks.append)
    after = tuned.evaluate()

    assert geometry.keys() and all(torch.equal(geometry[k], v) for k, v in geometry_state(tuned.pipeline.model).items())
    for old, new in zip(depths, depth_renders(tuned)):
        assert torch.allclose(old, new, atol=1e-6), "the same density along the same samples: the same depth"
    trained = dict(tuned.pipeline.model.named_parameters())
    assert any(not torch.equal(colour[k], trained[k].detach()) for k in colour), "colour learned"
    first, last = np.mean(chunks[0].losses), np.mean(chunks[-1].losses)
    assert last < 0.85 * first, (first, last)
    assert after.metrics["psnr"] > before.metrics["psnr"] + 1.0, (before.metrics, after.metrics)
    assert after.metrics["doc_psnr"] is not None, "the document regions moved over to the segmentation images"

    # a trial resumed within fine-tuning keeps its checkpoint's optimizers: the trainable loads the checkpoint
    # into an RGB-stage trainer, then hands over
    with tempfile.TemporaryDirectory() as saved:
        tuned.save(Path(saved) / CHECKPOINT_FILE)
        restored = NerfTrainer(config(tmp_path / "dataset"))
        restored.load(Path(saved) / CHECKPOINT_FILE)
    resumed = start_fine_tuning(restored, config(segmented), dataset, segmented, resumed=True)
    assert resumed.step == total
    old_state = tuned.trainer.optimizers.optimizers["fields"].state_dict()["state"]
    new_state = resumed.trainer.optimizers.optimizers["fields"].state_dict()["state"]
    assert old_state.keys() == new_state.keys() and all(
        torch.equal(old_state[k]["exp_avg"], new_state[k]["exp_avg"]) for k in old_state
    )


def test_segmentation_images_come_from_the_data_or_from_its_masks(scene, tmp_path):  # noqa: F811
    dataset = load_dataset(scene)
    named = json.loads((segmentation_view(dataset, [1, 2], tmp_path / "named") / "transforms.json").read_text())
    assert named["train_filenames"][0].endswith("segmentation/frame_00001.png")
    # without segmentation images, each frame's image with its mask applied
    transforms = json.loads((scene / "transforms.json").read_text())
    for frame in transforms["frames"]:
        del frame["segmentation_path"]
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "transforms.json").write_text(json.dumps(transforms))
    for folder in ("images", "masks"):
        (bare / folder).symlink_to(scene / folder)
    view = segmentation_view(load_dataset(bare), [1, 2], tmp_path / "made")
    made = json.loads((view / "transforms.json").read_text())["train_filenames"][0]
    assert made == "../segmentation/00001_frame_00001.png", "relative: the trial folder moves"
    assert len(list((tmp_path / "made" / "segmentation").iterdir())) == len(dataset.frames), "every frame, in order"
    image = np.asarray(Image.open(view / made))
    expected = np.asarray(Image.open(scene / "segmentation" / "frame_00001.png"))
    assert np.array_equal(image, expected)
    assert image[~(np.asarray(Image.open(scene / "masks" / "frame_00001.png")) >= 128)].max() == 0


@pytest.mark.slow
def test_a_sweep_over_fine_tuning_steps_records_both_stages(scene_dir, write_spec, tmp_path):
    spec = write_spec(
        f"""\
        name: finetune
        data: {scene_dir}
        profile: tiny
        metric: doc_psnr
        finetune: {{target: segmentation, train: color, steps: [0, 40]}}
        space: {{frames: 6, seed: 0, steps: 40, mask_error: {{values: [{{frames: 1, kind: none}}]}}}}
        search: {{algorithm: grid}}
        scheduler: {{type: none}}
        resources: {{cpu: 1, gpu: 0}}
        eval: {{every: 20}}
        """
    )
    result = run_cli(str(spec), "--storage", str(tmp_path / "sweeps"))
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "finetune"
    table = pd.read_csv(sweep / "results.csv").set_index("finetune_steps")
    assert (table.stop_reason == "completed").all()
    assert list(table.steps_done.sort_index()) == [40, 80] and list(table.target_steps.sort_index()) == [40, 80]
    assert list(table.stage.sort_index()) == ["rgb", "finetune"]
    tuned, baseline = table.loc[40], table.loc[0]
    assert tuned.finetune_psnr == tuned.psnr and tuned.rgb_psnr != tuned.psnr
    assert baseline.rgb_psnr == baseline.psnr and pd.isna(baseline.finetune_psnr)
    # the mask-error split goes on in the fine-tuning stage, on the same test views' segmentation images
    assert 5 < tuned.psnr_near_error < 60 and 5 < tuned.psnr_elsewhere < 60
    # the two trials share seed and RGB steps: the same RGB stage, step for step
    assert tuned.rgb_psnr == pytest.approx(baseline.rgb_psnr, abs=1e-4)

    (folder,) = [
        f for f in sweep.glob("train_trial_*") if json.loads((f / "trial.json").read_text())["config"]["finetune_steps"]
    ]
    assert (folder / "dataset_segmentation" / "transforms.json").is_file()
    reports = [json.loads(line) for line in (folder / "result.json").read_text().splitlines()]
    assert [(r["step"], r["stage"]) for r in reports] == [(20, "rgb"), (40, "rgb"), (60, "finetune"), (80, "finetune")]
    # a trial's best is its last stage's: the RGB stage's scores are of other images
    assert tuned.best_doc_psnr == pytest.approx(max(r["doc_psnr"] for r in reports if r["stage"] == "finetune"))
    # every milestone scored the whole test set (no eval.max_images), view by view, under the test frames' own names
    views = pd.read_csv(folder / "test_view_scores.csv")
    test_names = sorted(load_dataset(scene_dir).test_names)
    assert views.groupby("step").view.apply(sorted).to_dict() == {step: test_names for step in (20, 40, 60, 80)}
    assert views[views.step == 80].doc_psnr.mean() == pytest.approx(tuned.doc_psnr, abs=1e-4)

    client = MlflowClient(f"sqlite:///{tmp_path / 'sweeps' / 'mlflow.db'}")
    children, _ = children_and_parent(client, "finetune")
    (run,) = [r for r in children if r.data.params["finetune_steps"] == "40"]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "psnr")] == [20, 40]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "finetune_psnr")] == [60, 80]

    code, _, err = nerftune_cli("eval", sweep, "--reevaluate", "--views", "--out", tmp_path / "eval.csv")
    assert code == 0, err
    rows = pd.read_csv(tmp_path / "eval.csv")
    last = rows[(rows.finetune_steps == 40) & (rows.step == 80)].iloc[0]
    assert last.stage == "finetune" and last.reevaluated
    assert last.psnr == pytest.approx(tuned.psnr, abs=1e-3), "re-rendered on the segmented test images"
    # and view by view, under the test frames' own names, the segmentation images' scores included
    views = pd.read_csv(tmp_path / "eval_views.csv")
    tuned_views = views[(views.finetune_steps == 40) & (views.step == 80)]
    assert sorted(tuned_views.view) == test_names
    assert tuned_views.psnr.mean() == pytest.approx(last.psnr, abs=1e-3)


@pytest.mark.parametrize(
    "finetune, space, field, problem",
    [
        ("{steps: 40}", "method: vanilla-nerf", "finetune", "cannot freeze the geometry of vanilla-nerf"),
        ("{steps: 40}", "finetune_steps: 40", "finetune.steps", "given twice"),
        (None, "finetune_steps: 40", "space.finetune_steps", "there is no fine-tuning stage"),
        ("{target: depth, steps: 40}", "", "finetune.target", "segmentation"),
    ],
)
def test_bad_fine_tuning_is_one_line(scene_dir, write_spec, tmp_path, finetune, space, field, problem):
    block = f"finetune: {finetune}\n" if finetune else ""
    spec = write_spec(f"name: ft\ndata: {scene_dir}\n{block}space: {{frames: 6, steps: 40, {space}}}\n")
    line = refused_sweep(spec, tmp_path / "sweeps", "ft")
    assert f": {field}: " in line and problem in line, line


def test_fine_tuning_on_data_without_segmentation_or_masks_is_one_line(scene, write_spec, tmp_path):  # noqa: F811
    data = without_masks(scene, tmp_path / "bare", corners=True)
    spec = write_spec(f"name: ft\ndata: {data}\nfinetune: {{steps: 40}}\nspace: {{frames: 6, steps: 40}}\n")
    line = refused_sweep(spec, tmp_path / "sweeps", "ft")
    assert "finetune.target: segmentation needs a segmentation image or a mask for every frame" in line, line
