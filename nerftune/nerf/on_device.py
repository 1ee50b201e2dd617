"""nerfstudio's code in a training step of nerfacto that puts tensors on the CPU, rewritten to keep them on the
model's device: on CUDA the fast path's steps then do not wait for these copies, and a step compiled whole
(`compiled_model.py`) holds nothing but the device's work.

On CUDA a CPU tensor in a compiled graph splits its CUDA graphs or turns them off (inductor: "skipping cudagraphs
due to cpu device"), and a value read back to the host makes the host wait for the GPU. In nerfstudio 1.1.5:
- each hash grid keeps `scalings` and `hash_offset` as plain CPU attributes (not buffers, which `model.to` would
  move: every call copies them), and hashes with a CPU tensor of primes made at every call: 17 copies a grid call,
  51 in a training step of nerfacto, each a wait (torch's copy from ordinary memory synchronises the stream);
- the camera optimiser's rotation metrics go to the CPU and through numpy (two waits a step, eager code's too;
  traced, numpy arrays come out).
The same numbers, bit for bit: the hash in the same 64-bit integers, the degrees by numpy's float32 factor.
"""

from __future__ import annotations

import types
from typing import Any

import numpy
import torch
from nerfstudio.cameras.camera_optimizers import CameraOptimizer
from nerfstudio.field_components.encodings import HashEncoding

PRIMES = (1, 2654435761, 805459861)  # Instant-NGP's spatial hash, as nerfstudio's `HashEncoding.hash_fn` has it
# numpy's degrees a radian in float32 (180 / pi, each in float32): its `rad2deg`, which nerfstudio's metrics use
DEGREES_PER_RADIAN = float(numpy.float32(180) / numpy.float32(numpy.pi))


def keep_on_device(model: torch.nn.Module, device: torch.device) -> None:
    """Keep `model`'s hash grid constants on its `device` and its camera metrics off the host (undone by
    `undo_keep_on_device`)."""
    for grid in _hash_grids(model):
        grid.scalings, grid.hash_offset = grid.scalings.to(device), grid.hash_offset.to(device)
        grid.hash_fn = types.MethodType(_hash_on_device, grid)
    for optimizer in _camera_optimizers(model):
        optimizer.get_metrics_dict = types.MethodType(_metrics_on_device, optimizer)


def undo_keep_on_device(model: torch.nn.Module) -> None:
    """nerfstudio's own code and CPU constants back."""
    for grid in _hash_grids(model):
        if "hash_fn" in vars(grid):
            del grid.hash_fn
            grid.scalings, grid.hash_offset = grid.scalings.cpu(), grid.hash_offset.cpu()
    for optimizer in _camera_optimizers(model):
        vars(optimizer).pop("get_metrics_dict", None)


def _hash_grids(model: torch.nn.Module) -> list[HashEncoding]:
    """`model`'s hash grids that hash nerfstudio's way (a subclass's own hash is left alone)."""
    return [m for m in model.modules() if isinstance(m, HashEncoding) and type(m).hash_fn is HashEncoding.hash_fn]


def _camera_optimizers(model: torch.nn.Module) -> list[CameraOptimizer]:
    """`model`'s camera optimisers with nerfstudio's own metrics."""
    own = CameraOptimizer.get_metrics_dict
    return [m for m in model.modules() if isinstance(m, CameraOptimizer) and type(m).get_metrics_dict is own]


def _hash_on_device(self: HashEncoding, in_tensor: torch.Tensor) -> torch.Tensor:
    """nerfstudio's `HashEncoding.hash_fn` with its primes as Python integers (its CPU tensor of them promotes the
    grid's 32-bit corners to 64 bits: so does this)."""
    corners = in_tensor.to(torch.int64)
    x = torch.bitwise_xor(corners[..., 0] * PRIMES[0], corners[..., 1] * PRIMES[1])
    x = torch.bitwise_xor(x, corners[..., 2] * PRIMES[2])
    x %= self.hash_table_size
    x += self.hash_offset.to(x.device)
    return x


def _metrics_on_device(self: CameraOptimizer, metrics_dict: dict[str, Any]) -> None:
    """nerfstudio's `CameraOptimizer.get_metrics_dict` with the rotations' degrees left on the device."""
    if self.config.mode != "off":
        translation = self.pose_adjustment[:, :3].detach().norm(dim=-1)
        rotation = self.pose_adjustment[:, 3:].detach().norm(dim=-1)
        metrics_dict["camera_opt_translation_max"] = translation.max()
        metrics_dict["camera_opt_translation_mean"] = translation.mean()
        metrics_dict["camera_opt_rotation_mean"] = rotation.mean() * DEGREES_PER_RADIAN
        metrics_dict["camera_opt_rotation_max"] = rotation.max() * DEGREES_PER_RADIAN
