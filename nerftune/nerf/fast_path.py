"""The fast path: nerfstudio's pure-torch hash grid compiled with `torch.compile`, TF32 matmuls on CUDA, and
tiny-cuda-nn's fused hash grid instead wherever it is installed.

Without tiny-cuda-nn, nerfacto's hash grid is nerfstudio's `HashEncoding.pytorch_fwd`: eight gathers and many small
element-wise kernels per level, which compilation fuses (1.41x steps/s and 30 % less memory on an H200). Compiling
takes a while, so the trainer runs a warm-up pass before training and keeps its time apart (`compile_s`).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from nerfstudio.field_components.encodings import HashEncoding

from nerftune.machine import tcnn_installed
from nerftune.nerf.overrides import get_path, has_path

Implementation = Literal["tcnn", "torch+compile", "torch"]
IMPLEMENTATION_FIELD = "pipeline.model.implementation"  # the methods that have a hash grid to speed up have it


def default_implementation(device: str) -> str:
    """nerfstudio's `implementation` setting for a trial: tiny-cuda-nn where it can run, else torch."""
    return "tcnn" if device == "cuda" and tcnn_installed() else "torch"


def implementation(config: Any, fast: bool) -> Implementation | None:
    """What computes the trial's hash grid, as recorded with it (None: its model has no such setting)."""
    if not has_path(config, IMPLEMENTATION_FIELD):
        return None
    if get_path(config, IMPLEMENTATION_FIELD) == "tcnn":
        return "tcnn"
    return "torch+compile" if fast else "torch"


def set_tf32(enabled: bool) -> None:
    """TF32 matmuls on Ampere and later (10-bit mantissa products, float32 sums: ample for NeRF MLPs). Set on every
    trial, since a reused Ray worker keeps the previous trial's setting."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


TRIALS_PER_RESET = 8  # trials in one process that share compiled graphs before it starts afresh
_trials_compiled = 0  # since the last start afresh, in this process


def compile_hash_grids(model: torch.nn.Module) -> int:
    """Wrap every pure-torch hash grid of `model` in `torch.compile`; returns how many. Compiling happens at their
    first calls (the trainer's warm-up), once per grid for each grad mode and input kind it meets.

    A reused Ray worker keeps the graphs of its earlier trials: a grid of the same settings (dynamo's guards
    decide) runs them without compiling again (tens of seconds on a GPU). The grid's tables and tensors are inputs
    of the graphs, never constants in them. Each trial adds at most the graphs one fresh compile makes, so the limit
    below holds `TRIALS_PER_RESET` trials' worth; then the process starts afresh (past the limit, dynamo would fall
    back to eager code without failing)."""
    global _trials_compiled
    grids = [m for m in model.modules() if isinstance(m, HashEncoding) and m.tcnn_encoding is None]
    if _trials_compiled >= TRIALS_PER_RESET:
        torch._dynamo.reset()
        _trials_compiled = 0
    _trials_compiled += 1
    # nerfacto has 3 grids, each met with and without autograd, its inputs with and without requires_grad: 12
    # graphs of one function per trial, over dynamo's default limit of 8 already
    dynamo = torch._dynamo.config
    limit = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"  # its name before 2.7
    setattr(dynamo, limit, max(getattr(dynamo, limit), 8 * len(grids) * TRIALS_PER_RESET))
    for grid in grids:
        # dynamic shapes: one graph serves every batch and evaluation chunk size
        grid.pytorch_fwd = torch.compile(grid.pytorch_fwd, dynamic=True)
    return len(grids)


def has_torch_hash_grid(config: Any) -> bool:
    """Whether the trial's model computes a hash grid with nerfstudio's pure-torch code (what compiling speeds up)."""
    return has_path(config, IMPLEMENTATION_FIELD) and get_path(config, IMPLEMENTATION_FIELD) == "torch"


def wanted(setting: bool | str, config: Any, device: str) -> bool:
    """Whether a trial takes the fast path: spec `fast_path` true, or auto on CUDA, for a model it speeds up."""
    if setting is False or not has_torch_hash_grid(config):
        return False
    return setting is True or device == "cuda"
