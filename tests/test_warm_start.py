"""Warm starts across frame counts: per-image rows matched by frame, the rest of the model the source's."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import refused_sweep, run_cli
from nerftune.data.dataset import load_dataset, write_view
from nerftune import warm_start
from nerftune.errors import InputError
from nerftune.warm_start import remap_per_image

ANNEALED = {"pipeline.model.proposal_weights_anneal_max_num_iters": 20}  # the source trial's (conftest.one_trial)
TINY_TRIAL = """\
profile: tiny
scheduler: {type: none}
resources: {cpu: 1, gpu: 0}
tracking: {enabled: false}
"""


def test_rows_follow_their_frames_and_new_frames_start_from_the_mean_or_zero():
    appearance = torch.arange(6.0).reshape(3, 2)  # frames a, b, c
    poses = torch.ones(3, 6)
    state = {
        "_model.field.embedding_appearance.embedding.weight": appearance,
        "_model.camera_optimizer.pose_adjustment": poses,
        "_model.field.mlp_head.w": torch.ones(3, 3),
    }
    new, mapping = remap_per_image(
        state, ["/d/a.png", "/d/b.png", "/d/c.png"], ["/d/c.png", "/d/x.png", "/d/a.png", "/d/y.png"]
    )
    rows = new["_model.field.embedding_appearance.embedding.weight"]
    assert rows.tolist() == [[4, 5], [2, 3], [0, 1], [2, 3]], "c, mean, a, mean"
    assert (
        new["_model.camera_optimizer.pose_adjustment"][[1, 3]].abs().sum() == 0
        and new["_model.camera_optimizer.pose_adjustment"][[0, 2]].eq(1).all()
    )
    assert new["_model.field.mlp_head.w"] is state["_model.field.mlp_head.w"], "3 rows by chance: not per image"
    assert (
        mapping["shared"] == ["c.png", "a.png"]
        and mapping["new"] == ["x.png", "y.png"]
        and mapping["dropped"] == ["b.png"]
    )


@pytest.mark.slow
def test_warm_starts_on_fewer_and_more_frames_load_keep_shared_rows_and_train(
    one_trial, scene_dir, write_spec, tmp_path
):
    from nerftune.nerf.config import build_config
    from nerftune.nerf.initialise import initialise_from
    from nerftune.nerf.loop import NerfTrainer
    from nerftune.trials import locate, read_recipe
    from nerftune.warm_start import Source

    (source_dir,) = one_trial.trial_dirs()
    source_psnr = one_trial.table.psnr.iloc[0]
    storage = one_trial.storage  # the warm sweep beside it: `init_from: one/TRIAL_ID` names it in the same folder
    trial_dir, checkpoint = locate(source_dir)
    source = Source("all/x", trial_dir, checkpoint, read_recipe(trial_dir))
    source_rows = torch.load(checkpoint, weights_only=False)["pipeline"][
        "_model.field.embedding_appearance.embedding.weight"
    ]

    # before any new step: the same model, so the same test PSNR (more frames: their mean row is the source's mean,
    # which nerfacto renders test views with; fewer: the mean of the kept rows, close to it)
    dataset = load_dataset(scene_dir)
    source_names = [
        Path(n).name for n in json.loads((trial_dir / "dataset" / "transforms.json").read_text())["train_filenames"]
    ]
    for frames, tolerance in ((18, 1e-3), (6, 0.5)):
        view = write_view(dataset, dataset.train_indices(frames), tmp_path / f"view{frames}")
        trainer = NerfTrainer(build_config("nerfacto", view, tmp_path / f"ns{frames}", 300, 0, "cpu", "tiny", ANNEALED))
        mapping = initialise_from(trainer, source)
        assert len(mapping["shared"]) + len(mapping["new"]) == frames and set(mapping["shared"]) <= set(source_names)
        rows = trainer.pipeline.model.field.embedding_appearance.embedding.weight.detach()
        targets = [Path(n).name for n in trainer.pipeline.datamanager.train_dataset.image_filenames]
        for name in mapping["shared"]:
            assert torch.equal(rows[targets.index(name)], source_rows[sorted(source_names).index(name)])
        assert trainer.evaluate().metrics["psnr"] == pytest.approx(source_psnr, abs=tolerance), frames

    # the same as a sweep: both warm-started trials train on, and record where they came from
    spec = write_spec(
        f"name: warm\ndata: {scene_dir}\nspace: {{frames: {{values: [6, 18]}}, steps: 30, init_from: one/{source_dir.name.split('_')[2]}}}\n"
        f"search: {{algorithm: grid}}\n{TINY_TRIAL}",
        "warm.yaml",
    )
    assert (result := run_cli(str(spec), "--storage", str(storage))).returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(storage / "warm" / "results.csv").set_index("frames")
    assert (table.stop_reason == "completed").all() and (table.steps_done == 30).all()
    assert table.warm_shared_frames.loc[18] + table.warm_new_frames.loc[18] == 18
    for folder in (storage / "warm").glob("train_trial_*"):
        mapping = json.loads((folder / "warm_start.json").read_text())
        assert mapping["source_trial"] == read_recipe(source_dir).trial_id and mapping["source_step"] == 300


def fake_trial(folder: Path, data: str, method: str, data_hash: str = "") -> Path:
    """A trial folder as nerftune writes one, with a checkpoint file (not loaded by the checks)."""
    (folder / "checkpoint_000000").mkdir(parents=True)
    (folder / "checkpoint_000000" / "trial.ckpt").write_bytes(b"")
    recipe = {
        "trial_id": "f00",
        "config": {"method": method, "frames": 6, "seed": 0, "steps": 10},
        "profile": "tiny",
        "data_dir": data,
        "test_every": 8,
        "view_dir": str(folder / "dataset"),
        "data_hash": data_hash,
    }
    (folder / "trial.json").write_text(json.dumps(recipe))
    (folder / "result.json").write_text(json.dumps({"step": 10, "checkpoint_dir_name": "checkpoint_000000"}) + "\n")
    return folder


@pytest.mark.parametrize(
    "source, problem",
    [
        ("missing", "names no trial, checkpoint folder or checkpoint file"),
        ("other-data", "trained on"),
        ("other-method", "is a vanilla-nerf model; this sweep trains nerfacto"),
        ("changed-data", "before its frames changed (data hash 0123456789abcdef, now "),
    ],
)
def test_a_warm_start_from_nothing_or_from_another_dataset_or_method_is_one_line(
    scene_dir, write_spec, tmp_path, source, problem
):
    fake_trial(tmp_path / "other-data", str(tmp_path), "nerfacto")
    fake_trial(tmp_path / "other-method", str(scene_dir), "vanilla-nerf")
    fake_trial(tmp_path / "changed-data", str(scene_dir), "nerfacto", data_hash="0123456789abcdef")
    spec = write_spec(
        f"name: warm\ndata: {scene_dir}\nspace: {{frames: 6, steps: 10, init_from: {tmp_path / source}}}\n"
    )
    line = refused_sweep(spec, tmp_path / "sweeps", "warm")
    assert ": space.init_from: " in line and problem in line, line


def test_a_source_trained_on_a_copy_of_the_same_data_is_taken(scene_dir, tmp_path):
    dataset = load_dataset(scene_dir)
    fake_trial(tmp_path / "copy", str(tmp_path / "elsewhere"), "nerfacto", data_hash=dataset.data_hash)
    source = warm_start.resolve(str(tmp_path / "copy"), tmp_path / "spec.yaml", tmp_path)
    warm_start.check_compatible(source, tmp_path / "spec.yaml", dataset, ["nerfacto"])  # raises if refused
    fake_trial(tmp_path / "other", str(tmp_path / "elsewhere"), "nerfacto", data_hash="0123456789abcdef")
    source = warm_start.resolve(str(tmp_path / "other"), tmp_path / "spec.yaml", tmp_path)
    with pytest.raises(InputError, match="not on this sweep's data"):
        warm_start.check_compatible(source, tmp_path / "spec.yaml", dataset, ["nerfacto"])


@pytest.mark.parametrize(
    "warm_start, field, problem",
    [
        ("{frames: 500}", "warm_start.frames", "500 frames asked"),
        (
            "{method: vanilla-nerf}",
            "warm_start.method",
            "the source is a vanilla-nerf model; this sweep trains nerfacto",
        ),
    ],
)
def test_a_source_the_data_or_the_trials_cannot_take_is_one_line(
    scene_dir, write_spec, tmp_path, warm_start, field, problem
):
    spec = write_spec(f"name: warm\ndata: {scene_dir}\nwarm_start: {warm_start}\nspace: {{frames: 6, steps: 10}}\n")
    line = refused_sweep(spec, tmp_path / "sweeps", "warm")
    assert f": {field}: " in line and problem in line, line
    assert not (tmp_path / "sweeps" / "warm-source").exists()


@pytest.mark.slow
def test_one_spec_trains_its_source_first_then_warm_starts_every_trial_from_it(scene_dir, write_spec, tmp_path):
    spec = write_spec(
        f"name: warm\ndata: {scene_dir}\nwarm_start: {{frames: 12, steps: 40}}\n"
        f"space: {{frames: {{values: [6, 18]}}, steps: 20}}\nsearch: {{algorithm: grid}}\n{TINY_TRIAL}",
        "warm.yaml",
    )
    storage = tmp_path / "sweeps"
    result = run_cli(str(spec), "--storage", str(storage))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warm start: first one source model (frames 12, seed 0, method nerfacto, steps 40)" in result.stdout

    source = pd.read_csv(storage / "warm-source" / "results.csv")
    assert len(source) == 1 and source.stop_reason[0] == "completed" and source.frames[0] == 12
    table = pd.read_csv(storage / "warm" / "results.csv")
    assert (table.init_from == "source").all() and (table.stop_reason == "completed").all()
    assert (table.steps_done == 20).all(), "each trains its own steps after the source's"
    for folder in (storage / "warm").glob("train_trial_*"):
        mapping = json.loads((folder / "warm_start.json").read_text())
        assert (mapping["source_trial"], mapping["source_step"]) == (source.trial_id[0], 40)
        assert (
            len(mapping["shared"]) + len(mapping["new"])
            == json.loads((folder / "trial.json").read_text())["config"]["frames"]
        )

    # run again: both sweeps resume as finished; the source is not trained again
    source_reports = next((storage / "warm-source").glob("train_trial_*/result.json")).read_text()
    again = run_cli(str(spec), "--storage", str(storage))
    assert again.returncode == 0, again.stderr[-3000:]
    assert next((storage / "warm-source").glob("train_trial_*/result.json")).read_text() == source_reports
    assert pd.read_csv(storage / "warm" / "results.csv").equals(table)
