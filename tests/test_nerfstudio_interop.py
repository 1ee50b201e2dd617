"""A trial is a nerfstudio model: `nerftune export --nerfstudio` writes what nerfstudio's own tools load unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from test_novel_views import nerftune_cli


def nerfstudio_tool(name: str, *args, torch_home: Path) -> subprocess.CompletedProcess:
    """One of nerfstudio's installed console scripts, as a user runs it."""
    tool = Path(sys.executable).parent / name
    env = {**os.environ, "TORCH_HOME": str(torch_home)}
    return subprocess.run([str(tool), *map(str, args)], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def stand_in_lpips_weights(tmp_path_factory) -> Path:
    """nerfstudio's models build LPIPS when they are set up, and LPIPS downloads AlexNet's weights, which cannot work
    offline (here and in CI). Stand-in weights of the right shape (untrained) let the tools start; only PSNR is
    compared. Users who are online need nothing."""
    import torchvision

    home = tmp_path_factory.mktemp("torch_home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(torchvision.models.alexnet().state_dict(), home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth")
    return home


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(((a - b) ** 2).mean()))


@pytest.mark.slow
def test_nerfstudios_eval_and_render_load_an_exported_trial(one_trial, tmp_path, stand_in_lpips_weights):
    (trial,) = one_trial.trial_dirs()
    reported = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()][-1]

    code, out, err = nerftune_cli("export", trial, "--nerfstudio")
    assert code == 0, err
    config = Path(out.splitlines()[0].removeprefix("nerfstudio output: "))
    assert config == trial / "nerfstudio" / reported["trial_id"] / "nerfacto" / "step-000000299" / "config.yml"
    assert (config.parent / "nerfstudio_models" / "step-000000299.ckpt").is_file()

    evaluated = nerfstudio_tool(
        "ns-eval", "--load-config", config, "--output-path", tmp_path / "eval.json", torch_home=stand_in_lpips_weights
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    results = json.loads((tmp_path / "eval.json").read_text())["results"]
    assert results["psnr"] == pytest.approx(reported["psnr"], abs=1e-3), "the same model on the same test set"

    frames = tmp_path / "frames"
    rendered = nerfstudio_tool(
        "ns-render",
        "camera-path",
        "--load-config",
        config,
        "--camera-path-filename",
        config.parent / "test_views.json",
        "--output-format",
        "images",
        "--output-path",
        frames,
        torch_home=stand_in_lpips_weights,
    )
    assert rendered.returncode == 0, rendered.stdout[-2000:] + rendered.stderr[-2000:]
    images = sorted(frames.glob("*.jpg"))
    view = json.loads((trial / "dataset" / "transforms.json").read_text())
    assert len(images) == len(view["test_filenames"]) == 3
    # nerfstudio renders each test camera as nerftune does (up to JPEG): the camera path is in nerfstudio's frame
    from nerftune.nerf.render import load_trained
    from nerftune.trials import locate, read_recipe

    ours = load_trained(read_recipe(trial), locate(trial)[1], tmp_path / "work").evaluate(previews=3).previews
    width = ours[0].shape[1] // 3  # ground truth | render | error
    for image, row in zip(images, ours):
        theirs = np.asarray(Image.open(image)) / 255
        assert psnr(theirs, row[:, width : 2 * width] / 255) > 35, "the same view"
        assert psnr(theirs, row[:, :width] / 255) == pytest.approx(
            psnr(row[:, width : 2 * width] / 255, row[:, :width] / 255), abs=0.5
        )

    again, _, err = nerftune_cli("export", trial, "--nerfstudio")
    assert again == 2 and err.count("\n") == 1 and "exists already" in err and "--overwrite" in err, err
    assert nerftune_cli("export", trial, "--nerfstudio", "--overwrite")[0] == 0


def test_exporting_a_folder_that_is_no_trial_is_one_line(tmp_path):
    code, _, err = nerftune_cli("export", tmp_path, "--nerfstudio")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "is not a trial folder" in err
