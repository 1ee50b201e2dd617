"""Metrics inside the document region: the region from masks or projected corners, and doc_psnr/ssim/lpips."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import refused_sweep, run_cli
from nerftune.data.dataset import load_dataset
from nerftune.data.document_region import project_polygon, region_source, view_regions
from nerftune.data.synthetic import SceneOptions, write_scene
from nerftune.nerf.region_metrics import region_metrics

SCENE = SceneOptions(frames=8, width=160, height=120)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("scene") / SCENE.name(), SCENE)


def without_masks(scene: Path, folder: Path, corners: bool) -> Path:
    shutil.copytree(scene, folder)
    transforms = json.loads((folder / "transforms.json").read_text())
    for frame in transforms["frames"]:
        del frame["document_mask_path"]
        frame.pop("segmentation_path", None)
    if not corners:
        del transforms["nerftune"]["document_corners"]
    (folder / "transforms.json").write_text(json.dumps(transforms))
    return folder


def test_projected_corners_cover_the_card_as_its_masks_do(scene, tmp_path):
    masks = view_regions(load_dataset(scene, test_every=2))
    corners_data = load_dataset(without_masks(scene, tmp_path / "corners", corners=True), test_every=2)
    assert region_source(corners_data) == "corners"
    projected = view_regions(corners_data)
    assert len(projected) == len(masks) == 4
    for (_, mask), (_, quad) in zip(sorted(masks.items()), sorted(projected.items())):
        overlap = (mask & quad).sum() / (mask | quad).sum()
        assert mask.sum() > 200 and overlap > 0.9, overlap  # the card's rounded corners are all that differ
    bare = load_dataset(without_masks(scene, tmp_path / "bare", corners=False), test_every=2)
    assert region_source(bare) is None and view_regions(bare) == {}


def test_a_polygon_behind_the_camera_has_no_pixels():
    intrinsics = {"fl_x": 100.0, "fl_y": 100.0, "cx": 40.0, "cy": 30.0, "w": 80, "h": 60}
    square = np.array([[-1, -1, 5], [1, -1, 5], [1, 1, 5], [-1, 1, 5]], float)  # +z: behind an OpenGL camera
    assert not project_polygon(square, np.eye(4), intrinsics).any()
    assert project_polygon(square * [1, 1, -1], np.eye(4), intrinsics)[30, 40], "in front, at the image centre"


def test_document_metrics_count_only_the_region():
    truth = torch.rand(60, 80, 3, generator=torch.Generator().manual_seed(0))
    region = torch.zeros(60, 80, dtype=torch.bool)
    region[20:40, 30:60] = True
    outside = truth.clone()
    outside[~region] = 1 - outside[~region]  # wrong everywhere but the document
    scores = region_metrics(truth, outside, region, lpips=lambda a, b: float((a - b).abs().sum()))
    assert scores["doc_psnr"] == math.inf and scores["doc_lpips"] == 0.0 and scores["doc_ssim"] > 0.5
    inside = truth.clone()
    inside[region] = (inside[region] + 0.1).clamp(0, 1)
    expected = -10 * math.log10(float(((inside - truth) ** 2)[region].mean()))
    scores = region_metrics(truth, inside, region, lpips=None)
    assert scores["doc_psnr"] == pytest.approx(expected) and math.isnan(scores["doc_lpips"])
    seen = []
    region_metrics(truth, inside, region, lpips=lambda a, b: seen.append(a.shape) or 0.0)
    assert seen == [(1, 3, 32, 32)], "the 20x30 box is padded to LPIPS's smallest input"
    assert math.isnan(region_metrics(truth, inside, torch.zeros_like(region))["doc_psnr"])


@pytest.mark.slow
def test_a_sweep_can_rank_by_doc_psnr(scene_dir, write_spec, tmp_path):
    spec = write_spec(
        f"""\
        name: documents
        data: {scene_dir}
        profile: tiny
        metric: doc_psnr
        space: {{frames: 6, seed: 0, steps: 40}}
        scheduler: {{type: none}}
        resources: {{cpu: 1, gpu: 0}}
        tracking: {{enabled: false}}
        """
    )
    result = run_cli(str(spec), "--storage", str(tmp_path / "sweeps"))
    assert result.returncode == 0, result.stderr[-3000:]
    row = pd.read_csv(tmp_path / "sweeps" / "documents" / "results.csv").iloc[0]
    assert 5 < row.best_doc_psnr < 60 and row.best_doc_psnr == row.doc_psnr
    assert 0 < row.doc_ssim <= 1 and row.doc_psnr != row.psnr


def test_a_document_metric_on_data_without_a_document_is_one_line(scene, write_spec, tmp_path):
    data = without_masks(scene, tmp_path / "bare", corners=False)
    spec = write_spec(f"name: documents\ndata: {data}\nmetric: doc_ssim\nspace: {{frames: 2, steps: 10}}\n")
    line = refused_sweep(spec, tmp_path / "sweeps", "documents")
    assert ": metric: doc_ssim is computed inside the document" in line and "--masks" in line, line
