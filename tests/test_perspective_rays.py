"""nerftune/nerf/perspective_rays.py: nerfstudio's training rays for perspective cameras bit for bit, made without a
read back or a data-dependent size (torch's meta device stands in for a GPU), and nerfstudio's own code kept for
cameras it does not cover."""

import dataclasses
from contextlib import contextmanager
from typing import Iterator

import pytest
import torch
from device_waits import DeviceWaits
from nerfstudio.cameras.cameras import CameraType

from nerftune.data.dataset import load_dataset, write_view
from nerftune.nerf.config import build_config
from nerftune.nerf.loop import NerfTrainer
from nerftune.nerf.perspective_rays import PerspectiveRays


@pytest.fixture(scope="module")
def datamanager(scene_dir, tmp_path_factory):
    dataset = load_dataset(scene_dir)
    folder = tmp_path_factory.mktemp("rays")
    view = write_view(dataset, dataset.train_indices(6), folder / "view")
    return NerfTrainer(build_config("nerfacto", view, folder / "run", 10, 0, "cpu", "tiny")).pipeline.datamanager


def ray_indices(datamanager, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return datamanager.train_pixel_sampler.sample(next(datamanager.iter_train_image_dataloader))["indices"]


def fields(bundle) -> dict[str, torch.Tensor]:
    found = {f.name: getattr(bundle, f.name) for f in dataclasses.fields(bundle) if f.name != "metadata"}
    return {name: value for name, value in found.items() if value is not None} | dict(bundle.metadata)


@contextmanager
def changed(cameras, name: str, change) -> Iterator[None]:
    """`cameras` with a copy of its field `name` changed in place by `change` (nerfstudio broadcasts one camera's
    intrinsics to every frame: its fields may share memory), then its own field back."""
    own = getattr(cameras, name)
    copy = own.clone()
    change(copy)
    setattr(cameras, name, copy)
    try:
        yield
    finally:
        setattr(cameras, name, own)


def phone_lens(distortion: torch.Tensor) -> None:  # as COLMAP's OPENCV model gives it (k1, k2, k3, k4, p1, p2)
    distortion[:] = torch.tensor([-0.12, 0.05, 0.0, 0.0, 0.001, -0.002])


@pytest.mark.parametrize("distortion", ["none", "every camera"])
def test_the_rays_are_nerfstudios_bit_for_bit(datamanager, distortion):
    generator = datamanager.train_ray_generator
    with changed(generator.cameras, "distortion_params", phone_lens if distortion != "none" else lambda d: None):
        rays = PerspectiveRays.of(generator)
        assert rays is not None and rays.undistort == (distortion != "none")
        for seed in range(3):
            indices = ray_indices(datamanager, seed)
            own, made = fields(generator(indices)), fields(rays(indices))
            assert own.keys() == made.keys()
            assert {"origins", "directions", "pixel_area", "camera_indices", "directions_norm"} <= own.keys()
            for name, tensor in own.items():
                assert made[name].dtype == tensor.dtype and made[name].shape == tensor.shape, name
                torch.testing.assert_close(made[name], tensor, rtol=0, atol=0, msg=name)


def test_making_the_rays_on_a_device_never_waits(datamanager):
    generator = datamanager.train_ray_generator
    rays = PerspectiveRays.of(generator)  # (its decisions read from the cameras once, here on the CPU)
    indices = ray_indices(datamanager, 0).to("meta")
    cameras, coords = generator.cameras, generator.image_coords
    generator.cameras, generator.image_coords = cameras.to("meta"), coords.to("meta")
    try:
        with DeviceWaits() as waits:
            bundle = rays(indices)
    finally:
        generator.cameras, generator.image_coords = cameras, coords
    assert waits.waits == []
    assert bundle.origins.device.type == "meta" and bundle.directions.shape == (len(indices), 3)


def test_cameras_it_does_not_cover_keep_nerfstudios_own_rays(datamanager):
    generator = datamanager.train_ray_generator

    def one_fisheye(types):
        types[0] = CameraType.FISHEYE.value

    def one_distorted(distortion):
        distortion[0, 0] = -0.1

    with changed(generator.cameras, "camera_type", one_fisheye):
        assert PerspectiveRays.of(generator) is None, "a fisheye among them"
    with changed(generator.cameras, "distortion_params", one_distorted):
        assert PerspectiveRays.of(generator) is None, "distortion on some cameras only"
    assert PerspectiveRays.of(generator) is not None
