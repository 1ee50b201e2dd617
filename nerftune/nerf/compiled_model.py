"""nerfacto's whole training forward compiled as one graph (and with it, by AOTAutograd, its backward), optionally
replayed as CUDA graphs: the fast path's `model` and `cudagraphs` kinds.

Why: a step of nerfacto runs about a thousand small torch operations (samplers, three networks, renderers), each
dispatched from Python. On the CPU at 32 rays a step that way takes 21 ms whatever the arithmetic, and the H100
trained nerfacto at 30 to 33 ms a step at any size: a step waits on its host. One graph fuses them (1.53x the
steps a second of the compiled grid at 32 rays on the CPU, 1.23x at the tiny profile's 256: `benchmarks/
cpu_training.py --kind model --baseline grid`), and on CUDA it can be replayed with one launch (`cudagraphs`).

What stood in the way: nerfstudio's proposal sampler decides in Python, from step counters, whether a step trains
the proposal networks (`update_sched`: np.interp of the step), and weighs its samples by an exponent that changes
every step (`set_anneal`): dynamo guards on both and compiled afresh at every step. Here that decision is taken
outside the graph, as nerfstudio takes it, and picks one of two graphs (proposal networks trained or not); the
exponent enters the graph as a tensor. Evaluation keeps the eager forward (its calls differ in size) and the same
schedule.
"""

from __future__ import annotations

import types
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from nerfstudio.model_components.ray_samplers import ProposalNetworkSampler


@dataclass
class Schedule:
    """A compiled model's proposal schedule for the step at hand (an object, not plain numbers on the sampler, so
    that checkpoints' module counters leave it out)."""

    anneal_exponent: torch.Tensor  # filled in place: a CUDA graph's input stays put
    update_proposals: bool = True
    forced_update: bool | None = None  # True or False: `warm_up` compiles both variants before training


def supports(model: torch.nn.Module) -> bool:
    """Whether `model` samples with nerfstudio's own proposal sampler (nerfacto and its kin), whose schedule this
    module knows how to take out of the graph."""
    sampler = getattr(model, "proposal_sampler", None)
    return isinstance(sampler, ProposalNetworkSampler) and (
        type(sampler).generate_ray_samples is ProposalNetworkSampler.generate_ray_samples
    )


def compile_model(model: torch.nn.Module, cuda_graphs: bool = False) -> None:
    """Replace `model.get_outputs` in training mode by one compiled graph per schedule variant (`supports` must
    hold); `cuda_graphs` replays them as CUDA graphs (CUDA only). Undone by `uncompile_model`."""
    sampler: ProposalNetworkSampler = model.proposal_sampler
    schedule = sampler.schedule = Schedule(torch.ones((), device=next(model.parameters()).device))
    sampler.generate_ray_samples = types.MethodType(_generate_ray_samples, sampler)
    eager = model.get_outputs
    compiled = torch.compile(eager, dynamic=False, mode="reduce-overhead" if cuda_graphs else None)

    def get_outputs(ray_bundle: Any) -> dict[str, Any]:
        # nerfstudio's schedule, as `ProposalNetworkSampler.generate_ray_samples` keeps it, for every call
        # (evaluation's too: it resets the counter as well, and it anneals by the exponent a checkpoint restored)
        update = schedule.forced_update
        if update is None:
            update = sampler._steps_since_update > sampler.update_sched(sampler._step) or sampler._step < 10
        schedule.update_proposals = bool(update)
        schedule.anneal_exponent.fill_(float(sampler._anneal))
        if not model.training:
            outputs = eager(ray_bundle)  # (evaluation's calls differ in size)
        else:
            if cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()  # one training step: the last one's outputs are done with
            outputs = compiled(ray_bundle)
        if update:
            sampler._steps_since_update = 0
        return outputs

    get_outputs.eager = eager  # for `uncompile_model`
    model.get_outputs = get_outputs


def uncompile_model(model: torch.nn.Module) -> None:
    """Give a model compiled by `compile_model` nerfstudio's own forward and sampler back."""
    if is_compiled(model):
        del model.get_outputs
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
