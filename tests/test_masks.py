"""`masks` as a dimension: training that ignores the pixels outside each frame's mask, against training on all."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import refused_sweep, run_cli
from test_document_metrics import scene, without_masks  # noqa: F401 (a fixture)


@pytest.mark.slow
def test_a_sweep_over_masks_trains_with_and_without_them(scene_dir, write_spec, tmp_path):
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    spec = write_spec(
        f"""\
        name: masks
        data: {scene_dir}
        profile: tiny
        space: {{frames: 6, seed: 0, steps: 40, masks: {{values: [true, false]}}}}
        search: {{algorithm: grid}}
        scheduler: {{type: none}}
        resources: {{cpu: 1, gpu: 0}}
        eval: {{max_images: 1}}
        tracking: {{enabled: false}}
        """
    )
    result = run_cli(str(spec), "--storage", str(tmp_path / "sweeps"))
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "masks"
    table = pd.read_csv(sweep / "results.csv").set_index("masks")
    assert set(table.index) == {True, False} and (table.stop_reason == "completed").all()
    for folder in sweep.glob("train_trial_*"):
        masked = json.loads((folder / "trial.json").read_text())["config"]["masks"]
        view = json.loads((folder / "dataset" / "transforms.json").read_text())
        assert all(("mask_path" in frame) == masked for frame in view["frames"])
        outputs = NerfstudioDataParserConfig(data=folder / "dataset").setup().get_dataparser_outputs("train")
        assert (outputs.mask_filenames is not None) == masked, "nerfstudio reads the masks and trains inside them"
    # trained inside the card only, the masked model fits the card at least as well as the table around it
    assert table.loc[True, "doc_psnr"] > table.loc[True, "psnr"]


def test_masks_on_data_without_masks_is_one_line(scene, write_spec, tmp_path):  # noqa: F811
    data = without_masks(scene, tmp_path / "bare", corners=True)
    spec = write_spec(f"name: masks\ndata: {data}\nspace: {{frames: 2, steps: 10, masks: {{values: [true]}}}}\n")
    line = refused_sweep(spec, tmp_path / "sweeps", "masks")
    assert "space.masks: true needs a mask for every frame" in line and "--masks" in line, line
