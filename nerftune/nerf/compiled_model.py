"""What a training step of nerfacto computes from its batch (the rays of perspective cameras, the model's forward,
its metrics and its losses) compiled as one graph (and with it, by AOTAutograd, its backward), optionally replayed
as CUDA graphs: the fast path's `model` and `cudagraphs` kinds.

Why: a step of nerfacto runs about a thousand small torch operations (samplers, three networks, renderers, losses),
each dispatched from Python. On the CPU at 32 rays a step that way takes 21 ms whatever the arithmetic, and the
H100 trained nerfacto at 30 to 33 ms a step at any size: a step waits on its host. One graph fuses them (see
`benchmarks/cpu_training.py --kind model --baseline grid` and the README for the figures), and on CUDA it can be
replayed with one launch (`cudagraphs`).

What stood in the way: nerfstudio's proposal sampler decides in Python, from step counters, whether a step trains
the proposal networks (`update_sched`: np.interp of the step), and weighs its samples by an exponent that changes
every step (`set_anneal`): dynamo guards on both and compiled afresh at every step. Here that decision is taken
outside the graph, as nerfstudio takes it, and picks one of two graphs (proposal networks trained or not); the
exponent enters the graph as a tensor. The training PSNR, a torchmetrics module that counts its calls in a Python
integer, is computed in the graph as torchmetrics computes it, without its counter. Evaluation keeps the eager
forward (its calls differ in size) and the same schedule. And for CUDA graphs, the graph holds no CPU tensor:
nerfstudio's CPU constants are kept on the model's device (`on_device.py`), and those it makes without a device
are made there (the model's device is the default one while the graph is traced and run).
"""

from __future__ import annotations

import math
import types
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from nerfstudio.model_components.ray_samplers import ProposalNetworkSampler
from nerfstudio.pipelines.base_pipeline import VanillaPipeline
from torchmetrics.image import PeakSignalNoiseRatio

from nerftune.nerf import traceable_trunc_exp
from nerftune.nerf.host_batches import make_batches_on_host, next_ray_indices, undo_batches_on_host
from nerftune.nerf.perspective_rays import PerspectiveRays


@dataclass
class Schedule:
    """A compiled model's proposal schedule for the step at hand (an object, not plain numbers on the sampler, so
    that checkpoints' module counters leave it out)."""

    anneal_exponent: torch.Tensor  # filled in place: a CUDA graph's input stays put
    update_proposals: bool = True
    forced_update: bool | None = None  # True or False: `warm_up` compiles both variants before training


def supports(pipeline: Any) -> bool:
    """Whether `pipeline` trains nerfstudio's own way (`VanillaPipeline.get_train_loss_dict`, one process) a model
    that samples with nerfstudio's own proposal sampler (nerfacto and its kin), whose schedule this module knows how
    to take out of the graph."""
    sampler = getattr(getattr(pipeline, "model", None), "proposal_sampler", None)
    return (
        isinstance(sampler, ProposalNetworkSampler)
        and type(sampler).generate_ray_samples is ProposalNetworkSampler.generate_ray_samples
        and type(pipeline).get_train_loss_dict is VanillaPipeline.get_train_loss_dict
        and pipeline._model is pipeline.model  # (not wrapped for distributed training)
    )


def compile_model(pipeline: Any, cuda_graphs: bool = False) -> None:
    """Compile what a training step computes from its batch (the model's forward, its metrics and its losses; for
    perspective cameras the rays too, from their indices: `perspective_rays.py`) as one graph per schedule variant,
    in place of `pipeline.get_train_loss_dict`'s (`supports` must hold); `cuda_graphs` replays them as CUDA graphs
    (CUDA only). Undone by `uncompile_model`. (Its caller, `fast_path`, keeps nerfstudio's CPU constants on the
    device first: in the graph they would split its CUDA graphs.)"""
    model, device, datamanager = pipeline.model, pipeline.model.device, pipeline.datamanager
    traceable_trunc_exp.install()  # (else the step is traced twice, and afresh in every process)
    sampler: ProposalNetworkSampler = model.proposal_sampler
    schedule = sampler.schedule = Schedule(torch.ones((), device=device))
    sampler.generate_ray_samples = types.MethodType(_generate_ray_samples, sampler)
    eager = model.get_outputs
    # perspective cameras: the rays made in the graph too, from their indices (else from the rays nerfstudio made)
    rays = PerspectiveRays.of(datamanager.train_ray_generator)
    compiled = torch.compile(
        lambda ray_input, batch: losses_and_metrics(model, rays(ray_input) if rays else ray_input, batch),
        dynamic=False,
        mode="reduce-overhead" if cuda_graphs else None,
    )

    def on_device(ray_bundle: Any, batch: dict[str, Any]) -> tuple[dict, dict]:
        # nerfstudio makes some constants without a device, then copies them to the model's (a sampler's bins):
        # made on the model's device instead, as dynamo reads the default device while it traces (a CPU tensor in
        # the graph would split its CUDA graphs; dynamo cannot enter this context inside the graph)
        with torch.device(device):
            return compiled(ray_bundle, batch)

    def scheduled(forward: Callable[..., Any], *args: Any) -> Any:
        # nerfstudio's schedule, as `ProposalNetworkSampler.generate_ray_samples` keeps it, for every call
        # (evaluation's too: it resets the counter as well, and it anneals by the exponent a checkpoint restored)
        update = schedule.forced_update
        if update is None:
            update = sampler._steps_since_update > sampler.update_sched(sampler._step) or sampler._step < 10
        schedule.update_proposals = bool(update)
        schedule.anneal_exponent.fill_(float(sampler._anneal))
        result = forward(*args)
        if update:
            sampler._steps_since_update = 0
        return result

    def get_outputs(ray_bundle: Any) -> dict[str, Any]:
        if torch.compiler.is_compiling():
            return eager(ray_bundle)  # traced into a training step's graph, whose caller keeps the schedule
        return scheduled(eager, ray_bundle)  # evaluation's calls (they differ in size) and any other

    def training_step(ray_bundle: Any, batch: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        if cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()  # one training step: the last one's outputs are done with
        losses, metrics = scheduled(on_device, ray_bundle, batch)
        if cuda_graphs:  # the next replay overwrites a graph's outputs, and the trainer keeps metrics a while
            metrics = {name: _copied(value) for name, value in metrics.items()}
        return losses, metrics

    training_input = next_ray_indices(datamanager) if rays else datamanager.next_train

    def get_train_loss_dict(step: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        losses, metrics = training_step(*training_input(step))
        return {}, losses, metrics  # (nerfstudio's trainer reads no model outputs: the graph keeps none)

    get_outputs.eager = eager  # for `uncompile_model`
    model.get_outputs = get_outputs
    psnr = getattr(model, "psnr", None)
    if isinstance(psnr, PeakSignalNoiseRatio) and psnr.clamping_fn is None and psnr.dim is None:  # (nerfstudio's)
        psnr.forward = _psnr_without_state(psnr)
    pipeline.training_step, pipeline.training_input = training_step, training_input
    pipeline.get_train_loss_dict = get_train_loss_dict
    if device.type == "cuda" and not rays:  # the graph's inputs on the GPU, and the host never waiting for them
        make_batches_on_host(datamanager, device)


def _psnr_without_state(metric: PeakSignalNoiseRatio) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A torchmetrics PSNR's forward that, traced into a graph, computes the batch's value (what its forward
    returns, as torchmetrics computes it) without adding the batch to the metric's running totals: its update
    counter, a Python integer, would make dynamo compile afresh at every step. Nothing reads those totals.
    (torchmetrics' function would put CPU tensors in the graph: its constants.)"""
    stateful = metric.forward
    scale = 10 / math.log(metric.base)

    def forward(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_compiling():
            return stateful(preds, target)
        mean_squared_error = torch.sum((preds - target) ** 2) / target.numel()
        return (2 * torch.log(metric.data_range) - torch.log(mean_squared_error)) * scale  # (on the device)

    return forward


def _copied(value: Any) -> Any:
    return value.clone() if isinstance(value, torch.Tensor) else value


def losses_and_metrics(model: torch.nn.Module, ray_bundle: Any, batch: dict[str, Any]) -> tuple[dict, dict]:
    """A training step's losses and metrics from its batch, as nerfstudio's `VanillaPipeline.get_train_loss_dict`
    computes them."""
    outputs = model(ray_bundle)
    metrics = model.get_metrics_dict(outputs, batch)
    return model.get_loss_dict(outputs, batch, metrics), metrics


def training_input(pipeline: Any, step: int) -> tuple[Any, dict[str, Any]]:
    """What a training step of `pipeline` starts from: nerfstudio's rays and batch, or for a model compiled with
    its rays in the graph, their indices and the batch."""
    return vars(pipeline).get("training_input", pipeline.datamanager.next_train)(step)


def training_losses(pipeline: Any, ray_input: Any, batch: dict[str, Any]) -> tuple[dict, dict]:
    """`losses_and_metrics` of `pipeline`'s model from its `training_input`, by its compiled graphs where
    `compile_model` made them."""
    step = vars(pipeline).get("training_step")
    return step(ray_input, batch) if step else losses_and_metrics(pipeline.model, ray_input, batch)


def uncompile_model(pipeline: Any) -> None:
    """Give a pipeline compiled by `compile_model` nerfstudio's own training step, forward and sampler back."""
    model = pipeline.model
    if is_compiled(model):
        del pipeline.get_train_loss_dict
        del pipeline.training_step, pipeline.training_input
        undo_batches_on_host(pipeline.datamanager)
        del model.get_outputs
        psnr = getattr(model, "psnr", None)
        if psnr is not None and "forward" in vars(psnr):
            del psnr.forward
        del model.proposal_sampler.generate_ray_samples
        del model.proposal_sampler.schedule


def schedule_variants(model: torch.nn.Module) -> list[bool | None]:
    """The proposal schedules a warm-up pass should meet so that every graph is compiled before training: both for
    a compiled model, else whatever nerfstudio's schedule gives (None)."""
    return [True, False] if is_compiled(model) else [None]


def is_compiled(model: torch.nn.Module) -> bool:
    """Whether `compile_model` replaced `model`'s forward."""
    return hasattr(vars(model).get("get_outputs"), "eager")


@contextmanager
def forced_update(model: torch.nn.Module, update: bool | None) -> Iterator[None]:
    """Within it, a compiled model's training forward trains its proposal networks (True) or not (False)."""
    schedule = getattr(getattr(model, "proposal_sampler", None), "schedule", None)
    if update is None or schedule is None:
        yield
        return
    schedule.forced_update = update
    try:
        yield
    finally:
        schedule.forced_update = None


def _generate_ray_samples(self: ProposalNetworkSampler, ray_bundle: Any = None, density_fns: Any = None) -> Any:
    """nerfstudio's `ProposalNetworkSampler.generate_ray_samples` (1.1.5) with its schedule handed in
    (`self.schedule`) and its counters left to the caller."""
    schedule: Schedule = self.schedule
    weights_list, ray_samples_list = [], []
    levels = self.num_proposal_network_iterations
    weights = ray_samples = None
    for level in range(levels + 1):
        is_proposal = level < levels
        samples = self.num_proposal_samples_per_ray[level] if is_proposal else self.num_nerf_samples_per_ray
        if level == 0:
            ray_samples = self.initial_sampler(ray_bundle, num_samples=samples)
        else:
            annealed_weights = torch.pow(weights, schedule.anneal_exponent)
            ray_samples = self.pdf_sampler(ray_bundle, ray_samples, annealed_weights, num_samples=samples)
        if is_proposal:
            with torch.set_grad_enabled(schedule.update_proposals and torch.is_grad_enabled()):
                density = density_fns[level](ray_samples.frustums.get_positions())
            weights = ray_samples.get_weights(density)
            weights_list.append(weights)
            ray_samples_list.append(ray_samples)
    return ray_samples, weights_list, ray_samples_list
