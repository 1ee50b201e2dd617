"""Training batches made on the host and handed to the GPU without making the host wait for it.

nerfstudio's `VanillaDataManager` keeps the training images on the CPU and samples pixels there, then generates the
rays on the GPU from those CPU indices, and the model copies the pixels' colours to the GPU. Each of these steps
makes the host wait until the GPU has finished everything queued before it: indexing a GPU tensor with CPU indices
and copying from ordinary memory wait, and nerfstudio's camera code reads back from the GPU whether the cameras
differ in size, are distorted, and of which types they are. A host that waits every step cannot queue the next step
while the GPU trains this one, and the whole-step graph (`compiled_model.py`) would copy the pixels from the CPU in
its middle, splitting its CUDA graphs there.

Here nerfstudio's own ray generator runs on a CPU copy of the cameras (all on the host, nothing to wait for; the
same rays up to float rounding between the CPU's arithmetic and the GPU's), and the rays and the batch go to the GPU
from pinned memory as copies queued behind the GPU's work (torch's pinned-memory cache keeps each buffer until its
copy is done).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager
from nerfstudio.model_components.ray_generators import RayGenerator

from nerftune.nerf.perspective_rays import PerspectiveRays


def supports(datamanager: Any) -> bool:
    """Whether `datamanager` makes its training batches nerfstudio's own way (`VanillaDataManager.next_train`,
    with nerfstudio's ray generator), which `make_batches_on_host` knows how to move."""
    return (
        getattr(type(datamanager), "next_train", None) is VanillaDataManager.next_train
        and type(getattr(datamanager, "train_ray_generator", None)) is RayGenerator
    )


def make_batches_on_host(datamanager: Any, device: torch.device | str) -> bool:
    """From now on, `datamanager` generates its training rays on the CPU and hands rays and batch to `device` with
    copies that do not wait; returns whether it could (`supports`). Undone by `undo_batches_on_host`."""
    if not supports(datamanager) or "next_train" in vars(datamanager):
        return False
    device = torch.device(device)
    on_device = datamanager.train_ray_generator
    on_host = RayGenerator(on_device.cameras.to("cpu"))
    host_next_train = datamanager.next_train

    def next_train(step: int) -> tuple[Any, dict[str, Any]]:
        with _ray_generator(datamanager, on_host):
            ray_bundle, batch = host_next_train(step)
        move = lambda tensor: queued_copy(tensor, device)  # noqa: E731
        moved = {key: move(value) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
        return ray_bundle._apply_fn_to_fields(move), moved

    datamanager.next_train = next_train
    return True


def undo_batches_on_host(datamanager: Any) -> None:
    """Give `datamanager` nerfstudio's own `next_train` back."""
    if "next_train" in vars(datamanager):
        del datamanager.next_train


def index_without_waiting(datamanager: Any) -> bool:
    """Each of nerfstudio's training indices where it is used, so that making a batch waits for the GPU less (each
    wait stops the host from queueing the next kernels while the GPU trains). nerfstudio moves its cached batch to the
    device but for the images and masks, so the images' indices go there, and its pixel sampler indexes them with CPU
    indices and writes the result into a CPU tensor: a copy there and one back, every step. Its ray generator then
    indexes its coordinates and cameras, on the device, with those CPU indices: three more copies; its cameras'
    code reads their types, sizes and distortion back and selects through masks (`perspective_rays.py`: about a
    dozen waits); and the model copies the pixels' colours there twice (metrics, losses). Here the images' indices
    stay on the host, the rays' indices and the colours are copied to the device once, queued from pinned memory,
    and perspective cameras make their rays without reading back (others keep nerfstudio's code): the same batches
    and rays, bit for bit. Returns whether the generator's indices are moved; undone by
    `undo_index_without_waiting`. (A loader that collates afresh every few steps, rather than caching every image,
    keeps the images' indices where nerfstudio puts them.)"""
    loader = getattr(datamanager, "train_image_dataloader", None)
    generator = getattr(datamanager, "train_ray_generator", None)
    if type(generator) is not RayGenerator or "forward" in vars(generator):
        return False
    if generator.image_coords.device.type == "cpu":
        return False
    device = generator.image_coords.device
    make_rays = PerspectiveRays.of(generator) or generator.forward  # (perspective cameras: no waits in between)
    generator.forward = lambda ray_indices: make_rays(queued_copy(ray_indices, device))
    sampler = getattr(datamanager, "train_pixel_sampler", None)
    if sampler is not None and "sample" not in vars(sampler):
        sampler.sample = _pixels_queued(sampler.sample, device)
    batch = getattr(loader, "cached_collated_batch", None)
    indices = batch.get("image_idx") if getattr(loader, "cache_all_images", False) and isinstance(batch, dict) else None
    if isinstance(indices, torch.Tensor) and indices.device.type != "cpu":
        loader.cached_collated_batch = {**batch, "image_idx": indices.cpu()}  # (the loader reads it at every step)
        loader.batch_on_device = batch
    return True


def _pixels_queued(sample: Callable[[dict], dict], device: torch.device) -> Callable[[dict], dict]:
    """A pixel sampler's `sample` whose batch has its pixels' colours on `device` already, copied without waiting
    (models copy them there, from ordinary memory, with a wait each)."""

    def queued(image_batch: dict) -> dict:
        batch = sample(image_batch)
        if isinstance(batch.get("image"), torch.Tensor):
            batch["image"] = queued_copy(batch["image"], device)
        return batch

    return queued


def undo_index_without_waiting(datamanager: Any) -> None:
    """Give `datamanager` nerfstudio's own ray generator, pixel sampler and cached training batch back."""
    generator = getattr(datamanager, "train_ray_generator", None)
    if generator is not None and "forward" in vars(generator):
        del generator.forward
    sampler = getattr(datamanager, "train_pixel_sampler", None)
    if sampler is not None and "sample" in vars(sampler):
        del sampler.sample
    loader = getattr(datamanager, "train_image_dataloader", None)
    if loader is not None and "batch_on_device" in vars(loader):
        loader.cached_collated_batch = vars(loader).pop("batch_on_device")


class _RayIndices(torch.nn.Module):
    """A stand-in for nerfstudio's ray generator that hands on the rays' indices (on `device`, queued) for a compiled
    step to make the rays itself."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.to_device = device

    def forward(self, ray_indices: torch.Tensor) -> torch.Tensor:
        return queued_copy(ray_indices, self.to_device)


def next_ray_indices(datamanager: Any) -> Callable[[int], tuple[torch.Tensor, dict[str, Any]]]:
    """`datamanager`'s `next_train` that stops short of the rays: their indices (camera, row, column) on the ray
    generator's device, and the batch."""
    stand_in = _RayIndices(datamanager.train_ray_generator.image_coords.device)

    def next_train(step: int) -> tuple[torch.Tensor, dict[str, Any]]:
        with _ray_generator(datamanager, stand_in):
            return datamanager.next_train(step)

    return next_train


@contextmanager
def _ray_generator(datamanager: Any, generator: torch.nn.Module) -> Iterator[None]:
    """`datamanager` with `generator` for its training rays, within it only (a checkpoint or a render sees
    nerfstudio's own)."""
    own = datamanager.train_ray_generator
    datamanager.train_ray_generator = generator
    try:
        yield
    finally:
        datamanager.train_ray_generator = own


def queued_copy(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor` on `device`; from the CPU to CUDA, by a copy queued on the GPU from pinned memory (the host goes on
    at once)."""
    if tensor.device == device:
        return tensor
    if tensor.device.type == "cpu" and device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
