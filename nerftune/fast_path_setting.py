"""A spec's `fast_path`: `auto` (the default), `true`, `false`, or one of the faster kinds by name, opt-in until a GPU
run measures them (README, On a GPU). Pure: the spec, the checks and the plan read it without importing torch."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

from nerftune.dimensions import FieldProblem
from nerftune.errors import InputError
from nerftune.nerf.methods import has_hash_grid

# the kinds a spec may name, and what `nerf/fast_path.py` calls them
KindName = Literal["compiled-step", "cuda-graphs", "triton"]
KINDS: dict[str, str] = {"compiled-step": "model", "cuda-graphs": "cudagraphs", "triton": "triton"}
MEANINGS = {
    "compiled-step": "a training step compiled whole: forward, losses and backward",
    "cuda-graphs": "a training step compiled whole and replayed as CUDA graphs",
    "triton": "fused Triton kernels for the hash grids",
}
NEEDS_CUDA = {"cuda-graphs": "compiled-step", "triton": "true"}  # and what to use without CUDA


def known_setting(value: object) -> object:
    """`value` if a spec may write it as its `fast_path`; else the problem, naming every value it may."""
    if isinstance(value, bool) or value == "auto" or (isinstance(value, str) and value in KINDS):
        return value
    raise FieldProblem("fast_path", f"{value!r} is not a fast path", f"use auto, true, false, {', '.join(KINDS)}")


def kind_of(setting: bool | str) -> str:
    """What a trial's fast path speeds up (`nerf/fast_path.py`'s kind): the named kind, else the compiled grids."""
    return KINDS.get(str(setting), "grid")


def compiles_everywhere(setting: bool | str) -> bool:
    """Whether every trial of a model with a hash grid takes the fast path, on any device and however short."""
    return setting is True or (isinstance(setting, str) and setting in KINDS)


def check_fast_path(setting: bool | str, methods: Sequence[str], spec_path: Path, gpus: int, on_cluster: bool) -> None:
    """A fast path that every trial must take must apply to every method of the spec, and one that needs CUDA a
    machine with a GPU (or a cluster, whose nodes the trials' own checks see)."""
    if not compiles_everywhere(setting):
        return
    if setting in NEEDS_CUDA and gpus == 0 and not on_cluster:
        raise InputError(
            spec_path,
            "fast_path",
            f"{setting} needs a CUDA GPU and none is visible",
            f"use fast_path: {NEEDS_CUDA[setting]} or auto on the CPU",
        )
    for method in methods:
        if not has_hash_grid(method):
            raise InputError(
                spec_path,
                "fast_path",
                f"{method} has no nerfstudio hash grid for the fast path to compile",
                "use fast_path: auto (on where it applies), or a method of the nerfacto family",
            )
