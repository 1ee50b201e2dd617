"""The fast path: nerfstudio's pure-torch hash grid compiled with `torch.compile`, TF32 matmuls on CUDA, and
tiny-cuda-nn's fused hash grid instead wherever it is installed.

Without tiny-cuda-nn, nerfacto's hash grid is nerfstudio's `HashEncoding.pytorch_fwd`: eight gathers and many small
element-wise kernels per level, which compilation fuses (1.41x steps/s and 30 % less memory on an H200). Compiling
takes a while, so the trainer runs a warm-up pass before training and keeps its time apart (`compile_s`).
It also keeps the grids' constants and the camera optimiser's metrics on the model's device (`on_device.py`: the
same numbers): on CUDA, nerfstudio copies the constants from the CPU at every grid call, and each such copy makes
the host wait for the GPU (51 waits in a training step of nerfacto, 2 more for the metrics).
Other kinds wait for a GPU run to measure them (`benchmarks/gpu.py`), and sweeps compile the grids until then:
where Triton is at hand (torch's CUDA builds), `NerfTrainer(kind="triton")` gives the grids fused Triton kernels
(`triton_hash_grid.py`); `kind="model"` compiles a training step of nerfacto whole (forward, losses, backward)
instead, and `"cudagraphs"` replays it as CUDA graphs (`compiled_model.py`), the grids compiled for scoring.

On the CPU, `fast_path: auto` compiles the hash grid where it pays (`cpu_compile.py`): for training and scoring in
trials of a thousand steps or more (1.8x the steps a second), else for scoring only where the test set is
large (about 4x the rays a second, the same PSNR; training stays nerfstudio's eager code, bit for bit).

On the CPU, unless `fast_path: false`, nerfacto's scene contraction takes its L-infinity norm as max |x|
(`use_fast_contractions`): the same numbers bit for bit, without torch's slow general norm.
"""

from __future__ import annotations

import random
import time
from typing import Any, Literal

import numpy as np
import torch
from nerfstudio.field_components.encodings import HashEncoding
from nerfstudio.field_components.spatial_distortions import SceneContraction

from nerftune import cpu_compile
from nerftune.fast_path_setting import kind_of
from nerftune.machine import tcnn_installed
from nerftune.nerf.compiled_model import compile_model, forced_update, schedule_variants, supports, training_input
from nerftune.nerf.compiled_model import training_losses, uncompile_model
from nerftune.nerf.host_batches import index_without_waiting, undo_index_without_waiting
from nerftune.nerf.on_device import keep_on_device, undo_keep_on_device
from nerftune.nerf.overrides import get_path, has_path
from nerftune.nerf.run_state import module_scalars, restore_module_scalars

Implementation = Literal[
    "tcnn", "torch+compile", "torch+triton", "torch+compiled-model", "torch+cudagraphs", "torch+compiled-scoring",
    "torch",
]
# what the fast path speeds up a pure-torch hash grid's model with: the grids compiled, or fused by Triton, or the
# whole training step compiled, or that replayed as CUDA graphs
FastKind = Literal["grid", "triton", "model", "cudagraphs"]
IMPLEMENTATIONS: dict[str, Implementation] = {
    "grid": "torch+compile",
    "triton": "torch+triton",
    "model": "torch+compiled-model",
    "cudagraphs": "torch+cudagraphs",
}
WHOLE_MODEL = ("model", "cudagraphs")
IMPLEMENTATION_FIELD = "pipeline.model.implementation"  # the methods that have a hash grid to speed up have it


def default_implementation(device: str) -> str:
    """nerfstudio's `implementation` setting for a trial: tiny-cuda-nn where it can run, else torch."""
    return "tcnn" if device == "cuda" and tcnn_installed() else "torch"


def implementation(
    config: Any, fast: bool, compiled_scoring: bool = False, kind: FastKind = "grid"
) -> Implementation | None:
    """What computes the trial's hash grid, as recorded with it (None: its model has no such setting)."""
    if not has_path(config, IMPLEMENTATION_FIELD):
        return None
    if get_path(config, IMPLEMENTATION_FIELD) == "tcnn":
        return "tcnn"
    if fast:
        return IMPLEMENTATIONS[kind]
    return "torch+compiled-scoring" if compiled_scoring else "torch"


def set_tf32(enabled: bool) -> None:
    """TF32 matmuls on Ampere and later (10-bit mantissa products, float32 sums: ample for NeRF MLPs). Set on every
    trial, since a reused Ray worker keeps the previous trial's setting."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


TRIALS_PER_RESET = 8  # trials in one process that share compiled graphs before it starts afresh
_trials_compiled = 0  # since the last start afresh, in this process


def torch_hash_grids(model: torch.nn.Module) -> list[HashEncoding]:
    """The hash grids of `model` that nerfstudio computes with its pure-torch code."""
    return [m for m in model.modules() if isinstance(m, HashEncoding) and m.tcnn_encoding is None]


def usable_kind(pipeline: Any, kind: FastKind) -> FastKind:
    """`kind`, or the compiled grids for a pipeline whose training step `compiled_model.py` cannot compile, or the
    compiled model without CUDA graphs off CUDA."""
    if kind in WHOLE_MODEL and not supports(pipeline):
        return "grid"
    return "model" if kind == "cudagraphs" and next(pipeline.model.parameters()).device.type != "cuda" else kind


def speed_up(pipeline: Any, kind: FastKind, scoring_only: bool = False) -> int:
    """Compile every pure-torch hash grid of `pipeline`'s model (`compile_hash_grids`), or give it fused Triton
    kernels (`triton_hash_grid.py`: CUDA only, for training and scoring alike), or compile its whole training step
    and its grids for scoring (`usable_kind` must have allowed it); returns how many grids it sped up. For
    training, it keeps the model's constants on its device first (`keep_on_device`: on CUDA, nerfstudio's copies
    of them make the host wait, and in a whole-step graph they would split its CUDA graphs), and each training index
    where it is used (`index_without_waiting`: nerfstudio's make a step wait some twenty times)."""
    model = pipeline.model
    if not scoring_only:
        keep_on_device(model, model.device)
        index_without_waiting(getattr(pipeline, "datamanager", None))
    if kind == "triton":
        from nerftune.nerf.triton_hash_grid import use_triton_hash_grids  # Triton comes with torch's CUDA builds only

        return use_triton_hash_grids(model)
    if kind in WHOLE_MODEL and not scoring_only:
        grids = compile_hash_grids(model, scoring_only=True)  # first: it makes room for the model's graphs too
        compile_model(pipeline, cuda_graphs=kind == "cudagraphs")
        return grids
    return compile_hash_grids(model, scoring_only)


def fuse_adam(optimizers: Any) -> int:
    """Make each fresh Adam of nerfstudio's `Optimizers` step fused: one kernel for all of a group's parameters, and
    under mixed precision the gradient scaler hands it its infinity check as a tensor instead of reading it back
    (each read makes the CPU wait for the GPU: one a step for each of nerfacto's three optimizers). Used on CUDA with
    the whole model's kinds, for a GPU run to measure with them (on the CPU, 1.01 to 1.05x eager steps, and other
    rounding: not used there). Returns how many."""
    fused = 0
    for optimizer in optimizers.optimizers.values():
        if type(optimizer) is torch.optim.Adam and not optimizer.state:  # (a loaded state keeps its own kind)
            for group in optimizer.param_groups:
                group.update(fused=True, foreach=False)
            optimizer._step_supports_amp_scaling = True  # as `Adam(fused=True)` sets it
            fused += 1
    return fused


def undo_speed_ups(pipeline: Any) -> None:
    """Give a pipeline sped up by `speed_up` nerfstudio's eager code back."""
    uncompile_model(pipeline)
    uncompile_hash_grids(pipeline.model)
    undo_keep_on_device(pipeline.model)
    undo_index_without_waiting(getattr(pipeline, "datamanager", None))


def compile_hash_grids(model: torch.nn.Module, scoring_only: bool = False) -> int:
    """Wrap every pure-torch hash grid of `model` in `torch.compile` (`scoring_only`: its calls in eval mode, as
    evaluation and rendering run it); returns how many. Compiling happens at their first calls (the trainer's
    warm-up), once per grid for each grad mode and input kind it meets.

    A reused Ray worker keeps the graphs of its earlier trials: a grid of the same settings (dynamo's guards
    decide) runs them without compiling again (tens of seconds on a GPU). The grid's tables and tensors are inputs
    of the graphs, never constants in them. Each trial adds at most the graphs one fresh compile makes, so the limit
    below holds `TRIALS_PER_RESET` trials' worth; then the process starts afresh (past the limit, dynamo would fall
    back to eager code without failing)."""
    global _trials_compiled
    grids = torch_hash_grids(model)
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
        grid.pytorch_fwd = _compiled(grid, grid.pytorch_fwd, scoring_only)
    return len(grids)


def _compiled(grid: HashEncoding, eager: Any, scoring_only: bool) -> Any:
    compiled = torch.compile(eager, dynamic=True)  # dynamic shapes: one graph for every batch and chunk size

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        return eager(inputs) if scoring_only and grid.training else compiled(inputs)

    forward.eager = eager  # for `uncompile_hash_grids`
    return forward


def uncompile_hash_grids(model: torch.nn.Module) -> None:
    """Give every hash grid sped up by `speed_up_hash_grids` its eager code back."""
    for grid in model.modules():
        if isinstance(grid, HashEncoding) and hasattr(grid.pytorch_fwd, "eager"):
            grid.pytorch_fwd = grid.pytorch_fwd.eager


def use_fast_contractions(model: torch.nn.Module) -> int:
    """Give each L-infinity `SceneContraction` of `model` (nerfacto's, for its grids and proposal networks) a
    forward that takes the norm as max |x|; returns how many. It computes the same values and gradients bit for bit
    (ties and signed zeros too: both split a gradient evenly over the tied maxima) as `torch.linalg.norm(x,
    ord=inf)`, whose general code is some 15x slower on the CPU (22 ms against 1.6 for 250 thousand points, one
    thread): a fifth of a render with a compiled grid, which scores 1.26x faster without it
    (`benchmarks/cpu_contraction.py`)."""
    contractions = [m for m in model.modules() if isinstance(m, SceneContraction) and m.order == float("inf")]
    for contraction in contractions:
        contraction.forward = _fast_contraction(contraction)
    return len(contractions)


def wants_fast_contraction(setting: bool | str, device: str) -> bool:
    """Whether a model on `device` gets the fast contraction: on the CPU, where it was measured, unless the spec's
    `fast_path` is false. (On CUDA, under mixed precision, torch's norm may compute in float32 where max |x| would
    not: left to nerfstudio there.)"""
    return setting is not False and device != "cuda"


def _fast_contraction(contraction: SceneContraction) -> Any:
    def forward(positions: Any) -> Any:
        if not isinstance(positions, torch.Tensor):  # mip-NeRF's Gaussians: nerfstudio's own code
            return SceneContraction.forward(contraction, positions)
        magnitude = positions.abs().amax(dim=-1, keepdim=True)
        return torch.where(magnitude < 1, positions, (2 - (1 / magnitude)) * (positions / magnitude))

    return forward


def warm_up(trainer: Any, train_pass: bool = True) -> float:
    """One training pass of a `NerfTrainer` (forward and backward, no optimizer step; unless not `train_pass`; one
    for each graph of a compiled model) and one evaluation pass, so that compiling happens here, timed apart;
    returns its seconds. It leaves no trace: the random generators, the modules' counters and the gradients are as
    they were, so training goes on as it would have without it."""
    start = time.perf_counter()
    pipeline, device = trainer.pipeline, trainer.config.machine.device_type
    scalars = module_scalars(pipeline)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:  # (compiling may fail: no trace then either)
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if device == "cuda" else []):
            pipeline.train()
            with torch.autocast(device_type=device, enabled=trainer.trainer.mixed_precision):
                for update in schedule_variants(pipeline.model) if train_pass else []:
                    ray_input, batch = training_input(pipeline, trainer.step)  # (a pass changes its rays)
                    with forced_update(pipeline.model, update):
                        losses, _ = training_losses(pipeline, ray_input, batch)
                    torch.stack([loss.float() for loss in losses.values()]).sum().backward()
                pipeline.eval()
                with torch.no_grad():
                    pipeline.model(pipeline.datamanager.next_train(trainer.step)[0])
    finally:
        pipeline.train()
        trainer.trainer.optimizers.zero_grad_all()
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        restore_module_scalars(pipeline, scalars)
    return time.perf_counter() - start


def has_torch_hash_grid(config: Any) -> bool:
    """Whether the trial's model computes a hash grid with nerfstudio's pure-torch code (what compiling speeds up)."""
    return has_path(config, IMPLEMENTATION_FIELD) and get_path(config, IMPLEMENTATION_FIELD) == "torch"


def wanted(setting: bool | str, config: Any, device: str, steps: int = 0) -> bool:
    """Whether a trial of `steps` training steps takes the fast path (training and scoring compiled), for a model
    it speeds up: spec `fast_path` true or a named kind, or auto on CUDA, and on the CPU where it pays
    (`cpu_compile.py`)."""
    if setting is False or not has_torch_hash_grid(config):
        return False
    return device == "cuda" or cpu_compile.compiles_training(setting, steps)  # (true or a kind: every trial)


def compiles_scoring(setting: bool | str, config: Any, device: str, test_rays: int) -> bool:
    """Whether a trial off the fast path compiles its hash grids for scoring only: `fast_path: auto` on the CPU,
    for a model with nerfstudio's pure-torch grid, and a test set of `test_rays` rays large enough to pay."""
    on_cpu = setting == "auto" and device != "cuda" and has_torch_hash_grid(config)
    return on_cpu and cpu_compile.compiles_scoring(setting, 0, test_rays)


def choose(setting: bool | str, config: Any, device: str, steps: int, test_rays: int) -> dict[str, Any]:
    """A trial's fast path, as `NerfTrainer`'s arguments (fast, its kind, compiled_scoring, fast_contraction): what
    it compiles and rewrites, from its spec's `fast_path`, its device, its training steps and its test set's rays."""
    fast = wanted(setting, config, device, steps)
    return {
        "fast": fast,
        "kind": kind_of(setting),
        "compiled_scoring": not fast and compiles_scoring(setting, config, device, test_rays),
        "fast_contraction": wants_fast_contraction(setting, device),
    }
