"""The fast path's kinds for a step that waits on its host, on the CPU: a training step of nerfacto compiled whole
(`nerftune/nerf/compiled_model.py`, the `model` kind) against nerfstudio's eager code (the same losses step by step,
its proposal schedule kept, no compiling once training has begun), its graphs as they would reach a GPU (one
forward, one backward, no CPU tensor), and Adam stepped fused (`fast_path.fuse_adam`, which the whole model's kinds
use on CUDA)."""

import math
import types

import pandas as pd
import pytest
import torch
from conftest import run_cli
from device_waits import DeviceWaits, tensors_of

from nerftune.data.dataset import load_dataset, write_view
from nerftune.nerf.config import build_config
from nerftune.nerf.fast_path import fuse_adam, implementation, speed_up, undo_speed_ups, usable_kind
from nerftune.nerf import host_batches, traceable_trunc_exp
from nerftune.nerf.loop import NerfTrainer
from nerftune.nerf.run_state import module_scalars


@pytest.fixture
def view(scene_dir, tmp_path):
    dataset = load_dataset(scene_dir)
    return write_view(dataset, dataset.train_indices(12), tmp_path / "view")


def test_models_without_nerfstudios_proposal_sampler_keep_the_compiled_grids():
    plain = types.SimpleNamespace(model=torch.nn.Linear(2, 2))
    assert usable_kind(plain, "model") == "grid" and usable_kind(plain, "cudagraphs") == "grid"
    assert usable_kind(plain, "triton") == "triton" and usable_kind(plain, "grid") == "grid"


def test_the_whole_step_stays_on_its_device_in_one_graph_and_never_waits(view, tmp_path, monkeypatch):
    """On a GPU, a CPU tensor in the step's graphs would split its CUDA graphs or turn them off, a value read back
    to the host would make the host wait, and a graph break would run Python between graphs. A trial's loop of the
    `cudagraphs` kind in float32, for a model on another device (torch's meta device stands in for a GPU: the graphs
    are kept as they would reach inductor, not compiled): forward and backward are one graph each and hold no CPU
    tensor (the rays are made in the graph), and in 3 steps the host waits only where the loop reads its chunk's
    losses and PSNRs back: not while it samples pixels or copies them (queued from pinned memory on CUDA)."""
    from torch._dynamo.backends.common import aot_autograd

    config = build_config("nerfacto", view, tmp_path / "run", 10, 0, "cpu", "tiny")  # (float32 off CUDA)
    trainer = NerfTrainer(config)
    pipeline = trainer.pipeline
    pipeline.model.to("meta")
    cached = pipeline.datamanager.train_image_dataloader.cached_collated_batch  # as nerfstudio lays it out on a GPU:
    cached["image_idx"] = cached["image_idx"].to("meta")  # all but the images and masks on the device
    pipeline.datamanager.train_ray_generator.to("meta")  # and the ray generator's pixel coordinates
    trainer.trainer.optimizers = trainer.trainer.setup_optimizers()  # (they hold the parameters they were made with)
    graphs = []

    def kept(graph, inputs):
        graphs.append(graph)
        return graph  # (it runs on the meta device: shapes only)

    compile_with = torch.compile  # the graphs as inductor would receive them, kept instead of compiled
    backend = aot_autograd(fw_compiler=kept, bw_compiler=kept)
    monkeypatch.setattr(torch, "compile", lambda fn, **options: compile_with(fn, backend=backend, dynamic=False))
    with DeviceWaits():  # (the indices' one read back, as they go to the host, answered with zeros)
        speed_up(pipeline, "cudagraphs")  # (its grids are compiled for scoring only: nothing here scores)
    generator = pipeline.datamanager.train_ray_generator  # perspective cameras (decided above, on the CPU):
    generator.cameras = generator.cameras.to("meta")  # the rays made in the graph, from the cameras on the device
    pipeline.train()  # one step traced (the loop would read its loss back: the meta device has none to give)
    losses, metrics = pipeline.training_step(*pipeline.training_input(0))
    torch.stack(list(losses.values())).sum().backward()
    assert {"psnr", "camera_opt_rotation_max"} <= metrics.keys()
    assert all(isinstance(v, torch.Tensor) and v.device.type == "meta" for v in [*losses.values(), *metrics.values()])
    waits = DeviceWaits()
    monkeypatch.setattr(host_batches, "queued_copy", waits.queued()(host_batches.queued_copy))
    with waits:  # (watched, dynamo runs the step's code eagerly: the operations its graphs hold)
        trainer.train(3, check_every=3)
    assert len(graphs) == 2, "the forward and the backward, one graph each"
    on_cpu = [
        f"{node.name}: {(node.meta.get('stack_trace') or '').strip().splitlines()[-2:]}"
        for graph in graphs
        for node in graph.graph.nodes
        if any(value.device.type == "cpu" for value in tensors_of(node.meta.get("val")))
    ]
    assert not on_cpu, on_cpu
    assert waits.kinds() == ["read back", "read back"], waits.waits  # the chunk's losses, and its PSNRs


def test_nerfstudios_trunc_exp_is_traced_as_plain_operations_with_its_values_and_gradients(monkeypatch):
    """What makes the whole step one trace, cacheable by AOTAutograd: no autograd.Function in the graph."""
    from nerfstudio.field_components.activations import _TruncExp
    from nerfstudio.fields import density_fields, nerfacto_field

    graphs = []

    def kept(graph, inputs):
        graphs.append(graph)
        return graph.forward

    values = torch.tensor([-40.0, -15.5, -3.0, 0.0, 2.5, 14.9, 15.5, 40.0])
    compiled = torch.compile(traceable_trunc_exp.trunc_exp, backend=kept, fullgraph=True)
    results = {}
    for name, function in {"nerfstudio": _TruncExp.apply, "traced": compiled}.items():
        x = values.clone().requires_grad_()
        out = function(x)
        (out * torch.arange(1.0, 9.0)).sum().backward()
        results[name] = out.detach(), x.grad
    torch.testing.assert_close(results["traced"], results["nerfstudio"], rtol=0, atol=0)
    assert results["nerfstudio"][1][-1] == pytest.approx(8 * math.exp(15), rel=1e-6), "the gradient clipped at 15"
    targets = [str(node.target) for node in graphs[0].graph.nodes]
    assert len(graphs) == 1 and not [t for t in targets if "autograd_function" in t], targets
    # installed in nerfstudio's modules: eager code still calls its Function
    for module in (nerfacto_field, density_fields):
        monkeypatch.setattr(module, "trunc_exp", _TruncExp.apply)
    traceable_trunc_exp.install()
    assert nerfacto_field.trunc_exp is density_fields.trunc_exp is traceable_trunc_exp.trunc_exp
    assert type(traceable_trunc_exp.trunc_exp(values.clone().requires_grad_()).grad_fn).__name__ == "_TruncExpBackward"


@pytest.fixture
def eager_random_one_thread():
    """Inductor's random numbers drawn as eager code draws them, and one thread (as in a one-CPU trial:
    multi-threaded reductions round differently run to run): compiled and eager training compare step by step."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch._inductor.config.patch(fallback_random=True):  # (a config module: patched, not monkeypatched)
        yield
    torch.set_num_threads(threads)


def rendered(run: NerfTrainer) -> torch.Tensor:
    """The first test image as `run` renders it (PSNR alone would hide small differences)."""
    camera, _ = next(iter(run.pipeline.datamanager.fixed_indices_eval_dataloader))
    run.pipeline.eval()
    with torch.no_grad():
        rgb = run.pipeline.model.get_outputs_for_camera(camera=camera)["rgb"]
    run.pipeline.train()
    return rgb


@pytest.mark.slow
def test_the_compiled_model_trains_as_eager_code_does(view, tmp_path, eager_random_one_thread):
    from torch._dynamo.utils import counters

    losses, schedules, runs, midway, decided = {}, {}, {}, {}, {}
    for kind in ("eager", "model"):  # one after the other: each seeds the global generators training draws from
        config = build_config("nerfacto", view, tmp_path / kind, 400, 0, "cpu", "tiny")
        config.pipeline.datamanager.train_num_rays_per_batch = 64
        runs[kind] = run = NerfTrainer(config, fast=kind == "model", kind="model", fast_contraction=True)
        graphs = counters["stats"]["unique_graphs"]
        sampler = run.pipeline.model.proposal_sampler
        losses[kind], schedules[kind], decided[kind] = [], [], []
        # each call's schedule decision (training's and scoring's), as nerfstudio's rule reads it
        rule = sampler.update_sched
        sampler.update_sched = lambda step, kind=kind, sampler=sampler, rule=rule: (
            decided[kind].append((sampler._steps_since_update, step)) or rule(step)
        )

        def step_done(chunk, kind=kind, sampler=sampler):
            losses[kind].extend(chunk.losses)
            schedules[kind].append(getattr(sampler, "schedule", None) and sampler.schedule.update_proposals)

        midway[kind] = []
        for milestone in (20, 21):  # scoring moves the schedule too: at one of two steps in a row it resets it
            run.train(milestone, check_every=1, on_chunk=step_done)
            midway[kind].append(run.evaluate([0]).metrics["psnr"])
        run.train(40, check_every=1, on_chunk=step_done)
        if kind == "model":
            assert counters["stats"]["unique_graphs"] == graphs, "both graphs compiled before training"
    compiled = runs["model"]
    assert compiled.kind == "model" and compiled.compile_error is None and compiled.timings.compile_s > 0
    assert implementation(compiled.config, compiled.fast, kind=compiled.kind) == "torch+compiled-model"
    assert losses["model"] == pytest.approx(losses["eager"], rel=1e-4)  # (another seed: 1e-2 and more)
    assert midway["model"] == pytest.approx(midway["eager"], abs=1e-3)  # (equal to the third decimal or so)
    # steps that trained the proposal networks and steps that did not, each as nerfstudio's schedule has it, and
    # its counters where nerfstudio's own sampler leaves them
    assert set(schedules["model"]) == {True, False}
    assert decided["model"] == decided["eager"] and len(decided["eager"]) > 40
    scalars = {kind: module_scalars(run.pipeline.model.proposal_sampler)[""] for kind, run in runs.items()}
    assert scalars["model"] == scalars["eager"]
    # scoring (eager forward, grids compiled for it), the same as eager code's, and as a model restored from a
    # checkpoint scores it (by the exponent the checkpoint keeps); and undone, nerfstudio's code again
    psnr = {kind: run.evaluate([0]).metrics["psnr"] for kind, run in runs.items()}
    assert psnr["model"] == pytest.approx(psnr["eager"], abs=1e-3)
    compiled.save(tmp_path / "model.ckpt")
    config = build_config("nerfacto", view, tmp_path / "restored", 400, 0, "cpu", "tiny")
    restored = NerfTrainer(config, fast=True, kind="model", fast_contraction=True)
    restored.load(tmp_path / "model.ckpt")
    torch.testing.assert_close(rendered(restored), rendered(compiled), atol=1e-5, rtol=0)
    # a later trial in the same process (a Ray worker reused, as a sweep's are) runs the graphs already compiled, on
    # its own model: the same seed trains as the first compiled trial did (an earlier trial's model would not)
    graphs = counters["stats"]["unique_graphs"]
    config = build_config("nerfacto", view, tmp_path / "again", 400, 0, "cpu", "tiny")
    config.pipeline.datamanager.train_num_rays_per_batch = 64
    again, again_losses = NerfTrainer(config, fast=True, kind="model", fast_contraction=True), []
    again.train(20, check_every=1, on_chunk=lambda chunk: again_losses.extend(chunk.losses))
    assert counters["stats"]["unique_graphs"] == graphs and again.timings.compile_s < 5, "nothing compiled afresh"
    assert again_losses == pytest.approx(losses["model"][:20], rel=1e-6)
    pipeline, model = compiled.pipeline, compiled.pipeline.model
    assert usable_kind(pipeline, "cudagraphs") == "model", "off CUDA, no CUDA graphs"
    undo_speed_ups(pipeline)
    assert "get_outputs" not in vars(model) and not hasattr(model.proposal_sampler, "schedule")
    assert "get_train_loss_dict" not in vars(pipeline) and "forward" not in vars(model.psnr)
    assert compiled.evaluate([0]).metrics["psnr"] == pytest.approx(psnr["eager"], abs=1e-3)


@pytest.mark.slow
def test_fused_adam_steps_as_nerfstudios_adam_does_and_stays_fused_in_checkpoints(view, tmp_path):
    losses, runs = {}, {}
    for fused in (False, True):  # one after the other: each seeds the global generators training draws from
        config = build_config("nerfacto", view, tmp_path / str(fused), 400, 0, "cpu", "tiny")
        runs[fused] = run = NerfTrainer(config)
        if fused:
            assert fuse_adam(run.trainer.optimizers) == 3, "fields, proposal networks, camera poses"
        losses[fused] = []
        run.train(10, check_every=1, on_chunk=lambda chunk, fused=fused: losses[fused].extend(chunk.losses))
    # the same arithmetic, another order of its roundings: the losses agree far closer than another seed's would
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
    groups = [g for o in runs[True].trainer.optimizers.optimizers.values() for g in o.param_groups]
    assert groups and all(g["fused"] for g in groups)
    runs[True].save(tmp_path / "fused.ckpt")
    resumed = NerfTrainer(build_config("nerfacto", view, tmp_path / "resumed", 400, 0, "cpu", "tiny"))
    resumed.load(tmp_path / "fused.ckpt")
    assert fuse_adam(resumed.trainer.optimizers) == 0, "a loaded optimizer keeps the kind its state has"
    assert all(g["fused"] for o in resumed.trainer.optimizers.optimizers.values() for g in o.param_groups)
    assert math.isfinite(resumed.train(15))


@pytest.mark.slow
def test_a_spec_names_the_whole_step_kind_and_its_trials_train_with_it(scene_dir, write_spec, tmp_path):
    spec = write_spec(
        f"""\
        name: step
        data: {scene_dir}
        profile: tiny
        fast_path: compiled-step
        space: {{frames: 6, seed: 0, steps: 30}}
        resources: {{cpu: 1, gpu: 0}}
        eval: {{max_images: 1}}
        tracking: {{enabled: false}}
        """
    )
    result = run_cli(str(spec), "--storage", str(tmp_path / "sweeps"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fast path: compiled-step (a training step compiled whole: forward, losses and backward;" in result.stdout
    row = pd.read_csv(tmp_path / "sweeps" / "step" / "results.csv").iloc[0]
    assert row.implementation == "torch+compiled-model" and row.compile_s > 0, "compiled, a 30-step trial on the CPU"
    assert row.steps_done == 30 and 5 < row.best_psnr < 60
