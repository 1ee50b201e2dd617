"""nerfstudio's pure-torch hash grid as two fused Triton kernels, for CUDA machines without tiny-cuda-nn.

`HashEncoding.pytorch_fwd` computes each level's 8 corner hashes, gathers and interpolations as separate tensors
(dozens of kernels and [points, levels, 8, features] intermediates); `torch.compile` fuses part of that. Here one
kernel computes a block of points through every level (hash, gather, trilinear interpolation), and one computes
the backward: each corner's share of the output's gradient added into the table (atomics, as tiny-cuda-nn does)
and, where the positions need it (nerfacto's camera optimiser), their gradient, without storing anything between
the two but the inputs. The numbers are nerfstudio's: the same hash (its primes, the table size a power of two),
the same corners (ceil and floor of the scaled position) and the same order of interpolation.

Triton runs on NVIDIA GPUs (it comes with torch's CUDA builds); on the CPU its interpreter (`TRITON_INTERPRET=1`)
runs the same kernels, slowly, which is how the tests check them against nerfstudio's code.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

BLOCK = 128  # points per program


@triton.jit
def _corners(x, y, z, scaling, level, table_size):
    """The 8 corners' table rows (nerfstudio's order: ccc, cfc, ffc, fcc, ccf, cff, fff, fcf in x, y, z, c = ceil,
    f = floor) and the offsets of the scaled position from its floor corner."""
    sx, sy, sz = x * scaling, y * scaling, z * scaling
    fx, fy, fz = tl.floor(sx), tl.floor(sy), tl.floor(sz)
    # the hash as nerfstudio's: x * 1 ^ y * 2654435761 ^ z * 805459861, modulo the table size (a power of two:
    # only the low bits count, which unsigned 32-bit products keep)
    x_f, x_c = fx.to(tl.int32).to(tl.uint32), tl.ceil(sx).to(tl.int32).to(tl.uint32)
    y_f = fy.to(tl.int32).to(tl.uint32) * 2654435761
    y_c = tl.ceil(sy).to(tl.int32).to(tl.uint32) * 2654435761
    z_f = fz.to(tl.int32).to(tl.uint32) * 805459861
    z_c = tl.ceil(sz).to(tl.int32).to(tl.uint32) * 805459861
    mask = table_size - 1
    base = level * table_size
    h0 = ((x_c ^ y_c ^ z_c).to(tl.int64) & mask) + base
    h1 = ((x_c ^ y_f ^ z_c).to(tl.int64) & mask) + base
    h2 = ((x_f ^ y_f ^ z_c).to(tl.int64) & mask) + base
    h3 = ((x_f ^ y_c ^ z_c).to(tl.int64) & mask) + base
    h4 = ((x_c ^ y_c ^ z_f).to(tl.int64) & mask) + base
    h5 = ((x_c ^ y_f ^ z_f).to(tl.int64) & mask) + base
    h6 = ((x_f ^ y_f ^ z_f).to(tl.int64) & mask) + base
    h7 = ((x_f ^ y_c ^ z_f).to(tl.int64) & mask) + base
    return h0, h1, h2, h3, h4, h5, h6, h7, sx - fx, sy - fy, sz - fz


@triton.jit
def _gather(feature, h0, h1, h2, h3, h4, h5, h6, h7, FEATURES: tl.constexpr, valid):
    """One feature of the 8 corners (`feature`: the table's address of that feature in row 0)."""
    f0 = tl.load(feature + h0 * FEATURES, mask=valid, other=0.0)
    f1 = tl.load(feature + h1 * FEATURES, mask=valid, other=0.0)
    f2 = tl.load(feature + h2 * FEATURES, mask=valid, other=0.0)
    f3 = tl.load(feature + h3 * FEATURES, mask=valid, other=0.0)
    f4 = tl.load(feature + h4 * FEATURES, mask=valid, other=0.0)
    f5 = tl.load(feature + h5 * FEATURES, mask=valid, other=0.0)
    f6 = tl.load(feature + h6 * FEATURES, mask=valid, other=0.0)
    f7 = tl.load(feature + h7 * FEATURES, mask=valid, other=0.0)
    return f0, f1, f2, f3, f4, f5, f6, f7


@triton.jit
def _along_x(f0, f1, f2, f3, f4, f5, f6, f7, ox):
    """The corners interpolated along x, as nerfstudio does first: the values on the cell's 4 edges along x."""
    return f0 * ox + f3 * (1 - ox), f1 * ox + f2 * (1 - ox), f5 * ox + f6 * (1 - ox), f4 * ox + f7 * (1 - ox)


@triton.jit
def _forward(inputs, table, scalings, out, points, levels, table_size, FEATURES: tl.constexpr, BLOCK: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = rows < points
    x = tl.load(inputs + rows * 3, mask=valid, other=0.0)
    y = tl.load(inputs + rows * 3 + 1, mask=valid, other=0.0)
    z = tl.load(inputs + rows * 3 + 2, mask=valid, other=0.0)
    for level in range(levels):
        scaling = tl.load(scalings + level)
        h0, h1, h2, h3, h4, h5, h6, h7, ox, oy, oz = _corners(x, y, z, scaling, level, table_size)
        for feature in tl.static_range(FEATURES):
            f0, f1, f2, f3, f4, f5, f6, f7 = _gather(table + feature, h0, h1, h2, h3, h4, h5, h6, h7, FEATURES, valid)
            f03, f12, f56, f47 = _along_x(f0, f1, f2, f3, f4, f5, f6, f7, ox)
            f0312 = f03 * oy + f12 * (1 - oy)
            f4756 = f47 * oy + f56 * (1 - oy)
            value = f0312 * oz + f4756 * (1 - oz)
            tl.store(out + rows * (levels * FEATURES) + level * FEATURES + feature, value, mask=valid)


@triton.jit
def _backward(
    inputs, table, scalings, grad_out, grad_table, grad_inputs, points, levels, table_size,
    FEATURES: tl.constexpr, BLOCK: tl.constexpr, INPUT_GRAD: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    valid = rows < points
    x = tl.load(inputs + rows * 3, mask=valid, other=0.0)
    y = tl.load(inputs + rows * 3 + 1, mask=valid, other=0.0)
    z = tl.load(inputs + rows * 3 + 2, mask=valid, other=0.0)
    grad_x = tl.zeros([BLOCK], dtype=tl.float32)
    grad_y = tl.zeros([BLOCK], dtype=tl.float32)
    grad_z = tl.zeros([BLOCK], dtype=tl.float32)
    for level in range(levels):
        scaling = tl.load(scalings + level)
        h0, h1, h2, h3, h4, h5, h6, h7, ox, oy, oz = _corners(x, y, z, scaling, level, table_size)
        for feature in tl.static_range(FEATURES):
            g = tl.load(grad_out + rows * (levels * FEATURES) + level * FEATURES + feature, mask=valid, other=0.0)
            gz_c, gz_f = g * oz, g * (1 - oz)  # the output's gradient, shared out to the corners by their weights
            gy_cc, gy_fc, gy_cf, gy_ff = gz_c * oy, gz_c * (1 - oy), gz_f * oy, gz_f * (1 - oy)
            tl.atomic_add(grad_table + h0 * FEATURES + feature, gy_cc * ox, mask=valid)
            tl.atomic_add(grad_table + h3 * FEATURES + feature, gy_cc * (1 - ox), mask=valid)
            tl.atomic_add(grad_table + h1 * FEATURES + feature, gy_fc * ox, mask=valid)
            tl.atomic_add(grad_table + h2 * FEATURES + feature, gy_fc * (1 - ox), mask=valid)
            tl.atomic_add(grad_table + h4 * FEATURES + feature, gy_cf * ox, mask=valid)
            tl.atomic_add(grad_table + h7 * FEATURES + feature, gy_cf * (1 - ox), mask=valid)
            tl.atomic_add(grad_table + h5 * FEATURES + feature, gy_ff * ox, mask=valid)
            tl.atomic_add(grad_table + h6 * FEATURES + feature, gy_ff * (1 - ox), mask=valid)
            if INPUT_GRAD:
                corners = _gather(table + feature, h0, h1, h2, h3, h4, h5, h6, h7, FEATURES, valid)
                f0, f1, f2, f3, f4, f5, f6, f7 = corners
                f03, f12, f56, f47 = _along_x(f0, f1, f2, f3, f4, f5, f6, f7, ox)
                grad_x += (gy_cc * (f0 - f3) + gy_fc * (f1 - f2) + gy_cf * (f4 - f7) + gy_ff * (f5 - f6)) * scaling
                grad_y += (gz_c * (f03 - f12) + gz_f * (f47 - f56)) * scaling
                grad_z += g * ((f03 * oy + f12 * (1 - oy)) - (f47 * oy + f56 * (1 - oy))) * scaling
    if INPUT_GRAD:
        tl.store(grad_inputs + rows * 3, grad_x, mask=valid)
        tl.store(grad_inputs + rows * 3 + 1, grad_y, mask=valid)
        tl.store(grad_inputs + rows * 3 + 2, grad_z, mask=valid)


class _HashGrid(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, inputs: torch.Tensor, table: torch.Tensor, scalings: torch.Tensor) -> torch.Tensor:
        points, features = inputs.shape[0], table.shape[1]
        levels, table_size = scalings.shape[0], table.shape[0] // scalings.shape[0]
        out = torch.empty(points, levels * features, device=inputs.device, dtype=torch.float32)
        if points:
            _forward[(triton.cdiv(points, BLOCK),)](
                inputs, table, scalings, out, points, levels, table_size, FEATURES=features, BLOCK=BLOCK
            )
        ctx.save_for_backward(inputs, table, scalings)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        inputs, table, scalings = ctx.saved_tensors
        points, features = inputs.shape[0], table.shape[1]
        levels, table_size = scalings.shape[0], table.shape[0] // scalings.shape[0]
        input_grad = ctx.needs_input_grad[0]
        grad_table = torch.zeros_like(table)
        grad_inputs = torch.empty_like(inputs) if input_grad else inputs  # (an unused pointer when not wanted)
        if points:
            _backward[(triton.cdiv(points, BLOCK),)](
                inputs, table, scalings, grad_out.float().contiguous(), grad_table, grad_inputs, points, levels,
                table_size, FEATURES=features, BLOCK=BLOCK, INPUT_GRAD=input_grad,
            )  # fmt: skip
        return (grad_inputs if input_grad else None), grad_table, None


def encode(inputs: torch.Tensor, table: torch.Tensor, scalings: torch.Tensor) -> torch.Tensor:
    """nerfstudio's `HashEncoding.pytorch_fwd` of `inputs` ([..., 3]) with its `hash_table` ([levels * table
    size, features]) and `scalings` ([levels]); [..., levels * features] in float32."""
    levels, table_size = scalings.shape[0], table.shape[0] // scalings.shape[0]
    if table_size * levels != table.shape[0] or table_size & (table_size - 1):
        raise ValueError(f"a hash table of {table.shape[0]} rows is not {levels} levels of a power of two")
    flat = inputs.reshape(-1, 3).float().contiguous()
    scalings = scalings.to(device=inputs.device, dtype=torch.float32)
    out = _HashGrid.apply(flat, table.contiguous(), scalings)
    return out.reshape(*inputs.shape[:-1], out.shape[-1])


def use_triton_hash_grids(model: torch.nn.Module) -> int:
    """Give every pure-torch hash grid of `model` these kernels in place of `pytorch_fwd`; returns how many."""
    from nerftune.nerf.fast_path import torch_hash_grids

    grids = torch_hash_grids(model)
    for grid in grids:
        grid.pytorch_fwd = _fused(grid, grid.pytorch_fwd)
    return len(grids)


def _fused(grid: Any, eager: Any) -> Any:
    on_device: dict[torch.device, torch.Tensor] = {}  # the grid's scalings, copied to each device once

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        if inputs.device not in on_device:
            on_device[inputs.device] = grid.scalings.to(inputs.device, torch.float32)
        return encode(inputs, grid.hash_table, on_device[inputs.device])

    forward.eager = eager  # for `fast_path.uncompile_hash_grids`
    return forward
