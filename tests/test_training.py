"""Real nerfstudio training on the CPU with the tiny profile: it learns, repeats with a seed, resumes exactly."""

import math

import pytest

from nerftune.data.dataset import load_dataset, write_view
from nerftune.nerf import lpips
from nerftune.nerf.config import build_config
from nerftune.nerf.loop import NerfTrainer, _metric

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def view(scene_dir, tmp_path_factory):
    dataset = load_dataset(scene_dir)
    return write_view(dataset, dataset.train_indices(12), tmp_path_factory.mktemp("view"))


def trainer(view, tmp_path, seed=0, steps=400):
    return NerfTrainer(build_config("nerfacto", view, tmp_path, steps, seed, "cpu", "tiny"))


def test_tiny_nerfacto_learns(view, tmp_path):
    run = trainer(view, tmp_path)
    run.train(40)
    early = run.evaluate([0, 2]).metrics["psnr"]
    run.train(400)
    late = run.evaluate([0, 2])
    assert late.metrics["psnr"] > early + 2.0, (early, late.metrics)
    assert 0 < late.metrics["ssim"] <= 1
    assert late.rays_per_s > 0 and late.images == 2
    assert run.timings.steps_trained == 400 and run.timings.train_s > 0


def test_same_seed_same_losses_and_other_seed_differs(view, tmp_path):
    losses = [trainer(view, tmp_path / str(i), seed=s).train(15, check_every=1) for i, s in enumerate((3, 3, 4))]
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


def test_checkpoint_resumes_at_its_step_and_continues_identically(view, tmp_path):
    straight = trainer(view, tmp_path / "a")
    straight.train(20)
    straight.save(tmp_path / "mid.ckpt")
    expected = straight.train(30)
    resumed = trainer(view, tmp_path / "b")
    resumed.load(tmp_path / "mid.ckpt")
    assert resumed.step == 20
    assert resumed.train(30) == pytest.approx(expected, rel=1e-5)


def test_lpips_is_empty_when_its_weights_cannot_be_had(view, tmp_path):
    run = trainer(view, tmp_path)
    run.train(5)
    value = run.evaluate([0]).metrics["lpips"]
    if lpips.lpips_unavailable_reason() is None:  # weights were cached on this machine
        assert value is not None and math.isfinite(value)
    else:
        assert value is None
        assert "alexnet" in lpips.WEIGHTS_HINT.lower()


def test_fine_metrics_of_mipnerf_are_the_model_metrics():
    raw = {"psnr": 20.0, "coarse_psnr": 18.0, "fine_psnr": 21.0, "fine_ssim": 0.7, "fine_lpips": float("nan")}
    assert _metric(raw, "psnr") == 21.0
    assert _metric(raw, "ssim") == 0.7
    assert _metric(raw, "lpips") is None
    assert _metric({"psnr": 19.0}, "psnr") == 19.0
