"""Training batches made on the host (`nerftune/nerf/host_batches.py`, which the whole-step CUDA graphs use on a
GPU): on the CPU, where the copy to the device is none, the same rays and batch as nerfstudio's own `next_train`. And
the fast path's indices where they are used: in nerfstudio's layout on a GPU (the meta device stands in), sampling
pixels and indexing rays no longer wait for it."""

import dataclasses
import types

import torch
from device_waits import DeviceWaits

from nerftune.data.dataset import load_dataset, write_view
from nerftune.nerf.config import build_config
from nerftune.nerf import host_batches
from nerftune.nerf.fast_path import speed_up, undo_speed_ups
from nerftune.nerf.host_batches import make_batches_on_host, queued_copy, supports, undo_batches_on_host
from nerftune.nerf.loop import NerfTrainer


def tensors(ray_bundle, batch) -> dict[str, torch.Tensor]:
    """Every tensor of a training batch and its rays, by name."""
    found = {f"batch.{key}": value for key, value in batch.items()}
    for field in dataclasses.fields(ray_bundle):
        value = getattr(ray_bundle, field.name)
        if isinstance(value, torch.Tensor):
            found[f"rays.{field.name}"] = value
        elif isinstance(value, dict):
            found |= {f"rays.{field.name}.{key}": item for key, item in value.items()}
    return found


def test_batches_made_on_the_host_are_nerfstudios_and_nerfstudios_generator_stays(scene_dir, tmp_path):
    dataset = load_dataset(scene_dir)
    view = write_view(dataset, dataset.train_indices(6), tmp_path / "view")
    config = build_config("nerfacto", view, tmp_path / "run", 10, 0, "cpu", "tiny")
    datamanager = NerfTrainer(config).pipeline.datamanager
    generator = datamanager.train_ray_generator
    assert supports(datamanager)
    torch.manual_seed(3)
    own = tensors(*datamanager.next_train(0))
    assert make_batches_on_host(datamanager, "cpu")
    assert not make_batches_on_host(datamanager, "cpu"), "once"
    torch.manual_seed(3)
    moved = tensors(*datamanager.next_train(0))
    assert own.keys() == moved.keys() and {"batch.image", "rays.origins", "rays.directions"} <= own.keys()
    for name, tensor in own.items():
        torch.testing.assert_close(moved[name], tensor, rtol=0, atol=0, msg=name)
    assert datamanager.train_ray_generator is generator, "nerfstudio's generator, on its device, between steps"
    undo_batches_on_host(datamanager)
    assert "next_train" not in vars(datamanager)
    # on another device (here torch's meta device stands in for a GPU): every tensor of rays and batch goes there
    assert make_batches_on_host(datamanager, "meta")
    assert {tensor.device.type for tensor in tensors(*datamanager.next_train(1)).values()} == {"meta"}
    undo_batches_on_host(datamanager)
    assert not supports(types.SimpleNamespace(next_train=lambda step: None))


def test_a_copy_to_the_same_device_is_the_tensor_itself():
    tensor = torch.arange(4)
    assert queued_copy(tensor, torch.device("cpu")) is tensor


def test_sampling_pixels_and_indexing_rays_wait_for_nothing(scene_dir, tmp_path, monkeypatch):
    dataset = load_dataset(scene_dir)
    view = write_view(dataset, dataset.train_indices(6), tmp_path / "view")
    pipeline = NerfTrainer(build_config("nerfacto", view, tmp_path / "run", 10, 0, "cpu", "tiny")).pipeline
    datamanager = pipeline.datamanager
    loader, generator = datamanager.train_image_dataloader, datamanager.train_ray_generator
    # laid out as nerfstudio lays it out on a GPU (the meta device stands in): the cached batch on the device but for
    # the images and masks, so the images' indices too, and the ray generator's pixel coordinates
    on_device = loader.cached_collated_batch["image_idx"].to("meta")
    loader.cached_collated_batch["image_idx"] = on_device
    generator.to("meta")
    handed = []  # what reaches nerfstudio's own ray generation (which copies its indices to the device and reads back)
    record = lambda camera_indices, coords: handed.append(camera_indices)  # noqa: E731
    monkeypatch.setattr(generator.cameras, "generate_rays", record)
    with DeviceWaits() as nerfstudios:
        datamanager.next_train(0)
    # the pixel sampler: its indices copied to the device and the result read back; the generator's coordinates
    assert nerfstudios.kinds() == ["copy from the CPU", "read back", "copy from the CPU"], nerfstudios.waits
    assert handed[-1].device.type == "cpu"
    with DeviceWaits() as setting_up:  # (the images' indices read back once, answered with zeros here)
        speed_up(pipeline, "grid")
    assert setting_up.kinds() == ["read back"]
    sped_up = DeviceWaits()
    monkeypatch.setattr(host_batches, "queued_copy", sped_up.queued()(host_batches.queued_copy))  # (pinned on CUDA)
    cameras = generator.cameras
    generator.cameras = cameras.to("meta")  # (perspective cameras, decided above: their rays made on the device)
    with sped_up:
        rays, batch = datamanager.next_train(1)
    generator.cameras = cameras
    assert sped_up.waits == [], "a batch and its rays made without waiting"
    assert rays.origins.device.type == "meta" and rays.camera_indices.device.type == "meta"
    assert batch["image"].device.type == "meta", "its pixels' colours copied to the device (models copy them twice)"
    undo_speed_ups(pipeline)
    assert loader.cached_collated_batch["image_idx"] is on_device, "nerfstudio's own batch back"
    assert "forward" not in vars(generator) and "sample" not in vars(datamanager.train_pixel_sampler), "its own code"
    with DeviceWaits():
        assert datamanager.next_train(2)[1]["image"].device.type == "cpu"
