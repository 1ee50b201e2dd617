"""nerftune on a GPU against bare nerfstudio, every figure measured in this one run (at most 10 minutes).

On the synthetic ID card (320x240, 60 frames) with nerfacto, in this order, each part printed as it ends:

    bare      (a) nerfstudio's own Trainer.train(), nerftune's config for the same method and profile
    eager     (b) a nerftune trial's training loop (NerfTrainer), no fast path; its checkpoint reloads exactly
    fast      (b') the same with the fast path (compiled hash grid, TF32, nerfstudio's constants kept on the
              GPU, a batch made without waiting for it; on the CPU the fast contraction too); compiling timed apart
    triton    (b'') the fast path with the Triton hash grid (`triton_hash_grid.py`) for the compiled one (CUDA)
    fp32      (b''') the fast path in float32 (TF32 matmuls) instead of nerfacto's float16 mixed precision, whose
              gradient scaler makes each step wait for the GPU (CUDA)
    graphs    (b4) the fast path with a training step's rays, forward, losses and backward compiled whole
              (`compiled_model.py`, `perspective_rays.py`) and replayed as CUDA graphs, Adam fused (CUDA)
    graphs32  (b5) the same in float32 (TF32 matmuls): without a gradient scaler (nerfstudio's trainer reads its
              scale twice a step) a step should not wait for the GPU at all, but for the losses read back every
              50 steps, so the host can run ahead (CUDA)
    model     (b6) the whole step compiled without CUDA graphs
    sweep     (c) a real Ray Tune sweep, `python -m nerftune.sweep`: 4 trials sharing the GPU (resources.gpu 0.25),
              each trial's steps/s, peak memory and the device Ray gave it
    auto      the same sweep with `resources.gpu: auto` and the small profile: it measures its packing first, then
              runs on the share it chose (GPU only: on the CPU, `gpu: auto` is refused)
    packing   what `resources: {gpu: auto}` measures: 1, 2 and 4 copies at once, tiny and small profiles, and how
              busy one copy alone keeps the GPU (`gpu_busy`: packing cannot beat 1/gpu_busy without MPS)
    mps       the same packing curves under a private NVIDIA MPS daemon (`mps.py`), where the copies' kernels can
              run at once (CUDA)

then the ratios (b)/(a), (b')/(a), aggregate (c)/(a), the projected time of search_spaces/frames.yaml, and on a GPU
where each nerftune loop's step time goes (`step_breakdown.py`: its costliest kernels, how busy the GPU is). Parts
that would not end within --budget seconds are skipped and said so. Usage (on a GPU machine):

    python benchmarks/gpu.py [--steps 200] [--profile default] [--budget 480] [--out results.json]
    python benchmarks/gpu.py --parts packing,mps --packing-profiles small  # one packing curve, without and with MPS
    python benchmarks/gpu.py --parts sweep,packing --fast-path cuda-graphs  # sweeps and probes with a named kind
    python benchmarks/gpu.py --device cpu --profile tiny --steps 60 --packing-profiles tiny   # a CPU rehearsal
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from bare import bare_nerfstudio
from gpu_table import print_summary
from mps import private_mps
from step_breakdown import step_breakdown

from nerftune.data.dataset import load_dataset, write_view
from nerftune.data.synthetic import SceneOptions, write_scene
from nerftune.fast_path_setting import KINDS
from nerftune.machine import visible_gpus
from nerftune.nerf.config import build_config
from nerftune.nerf.loop import NerfTrainer
from nerftune.nerf.fast_path import WHOLE_MODEL, wants_fast_contraction
from nerftune.packing import PACKING_FILE, ProbeJob, measure

SWEEP_TRIALS = 4
LOOPS = {  # the nerftune loops measured (their rows: gpu_table.LABELS): part: (fast path, its kind, config overrides)
    "eager": (False, "grid", {}),
    "fast": (True, "grid", {}),
    "triton": (True, "triton", {}),
    "fp32": (True, "grid", {"mixed_precision": False}),
    "graphs": (True, "cudagraphs", {}),
    "graphs32": (True, "cudagraphs", {"mixed_precision": False}),
    "model": (True, "model", {}),
}
CUDA_ONLY = {
    "triton": "Triton's kernels run on CUDA; its interpreter checks them on the CPU",
    "fp32": "the CPU trains in float32 anyway",
    "graphs": "CUDA graphs need CUDA",
    "graphs32": "CUDA graphs need CUDA",
}


def trial_loop(
    view: Path, out: Path, steps: int, device: str, profile: str, fast: bool, kind: str, overrides: dict
) -> dict[str, float]:
    """A nerftune trial's loop (as the trainable runs it, without Ray); after training, the checkpoint it saves
    is loaded into a new model, which must score the same test PSNR."""
    out.mkdir(parents=True, exist_ok=True)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    config = build_config("nerfacto", view, out / "trial", steps, 0, device, profile, overrides)
    fast_contraction = wants_fast_contraction(fast, device)  # as `fast_path: true` (or false) has it
    trainer = NerfTrainer(config, fast=fast, kind=kind, fast_contraction=fast_contraction)
    trainer.train(steps)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0.0
    psnr = trainer.evaluate().metrics["psnr"]
    trainer.save(out / "trial.ckpt")
    timings = trainer.timings
    steps_per_s = timings.steps_trained / timings.train_s
    # (it trains 25 steps more, after the checkpoint and the PSNR above)
    breakdown = {"breakdown": step_breakdown(trainer, steps_per_s)} if device == "cuda" else {}
    reloaded_config = build_config("nerfacto", view, out / "reloaded", steps, 0, device, profile, overrides)
    reloaded = NerfTrainer(reloaded_config, fast=fast, kind=kind, fast_contraction=fast_contraction)
    reloaded.load(out / "trial.ckpt")
    return {
        "steps_per_s": steps_per_s,
        "peak_mb": peak,
        "kind": trainer.kind if trainer.fast else None,  # what it ran: a kind its model lacks falls back
        "compile_error": trainer.compile_error,
        "compile_s": timings.compile_s,
        "psnr": psnr,
        "psnr_reloaded": reloaded.evaluate().metrics["psnr"],
    } | breakdown


def ray_sweep(
    scene: Path, out: Path, steps: int, profile: str, gpu: float | str, name: str, fast_path: str = "auto"
) -> dict[str, Any]:
    """`python -m nerftune.sweep` with 4 trials that share the GPU (`gpu` each, or `auto`: as many as measured to
    pay), on the spec's `fast_path`; their rows of results.csv, and with `auto` what the sweep measured and chose
    (packing.json)."""
    cpus = max(1, min(4, (os.cpu_count() or 2) // SWEEP_TRIALS))
    spec = out / f"{name}.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            name: {name}
            data: {scene}
            profile: {profile}
            fast_path: {fast_path}
            space: {{steps: {steps}, seed: {{values: {list(range(SWEEP_TRIALS))}}}}}
            search: {{algorithm: grid}}
            scheduler: {{type: none}}
            resources: {{cpu: {cpus}, gpu: {gpu}}}
            max_concurrent_trials: {SWEEP_TRIALS}
            tracking: {{enabled: false}}
            """
        )
    )
    started = time.perf_counter()
    log = out / "sweep.out"
    with log.open("w") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "nerftune.sweep", str(spec), "--storage", str(out / "sweeps")],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the sweep failed ({done.returncode}): " + " | ".join(log.read_text().splitlines()[-8:]))
    folder = out / "sweeps" / name
    table = pd.read_csv(folder / "results.csv")
    columns = ["trial_id", "seed", "steps_done", "steps_per_s", "peak_gpu_mb", "compile_s", "train_s", "wall_s"]
    columns += ["device", "cuda_visible_devices", "gpu_name", "implementation", "psnr"]
    span = training_span(folder)
    return {
        "wall_s": time.perf_counter() - started,
        "training_span_s": span,
        "aggregate_steps_per_s": float(table["steps_done"].sum()) / span,
        "sum_of_trial_steps_per_s": float(table["steps_per_s"].sum()),
        "trials": table[[c for c in columns if c in table]].to_dict("records"),
        **({"packing": json.loads((folder / PACKING_FILE).read_text())} if gpu == "auto" else {}),
    }


def training_span(folder: Path) -> float:
    """Seconds from the first trial's first step to the last trial's last step: each trial's last report time,
    less its evaluation, marks its end; less its training time too, its start (Ray stamps reports in seconds)."""
    starts, ends = [], []
    for result in folder.glob("train_trial_*/result.json"):
        last = json.loads(result.read_text().splitlines()[-1])
        ends.append(last["timestamp"] - last["eval_s"])
        starts.append(ends[-1] - last["train_s"])
    return max(ends) - min(starts)


def packing_curve(scene: Path, profile: str, steps: int, fast_path: str = "auto") -> list[dict[str, Any]]:
    cpus = max(1, (os.cpu_count() or 4) // 4)  # as a sweep of 4 trials per GPU on this machine would give each
    job = ProbeJob(str(scene), 8, profile, fast_path, {"method": "nerfacto", "frames": 1.0, "seed": 0}, steps, cpus)
    return [
        {"copies": m.copies, "aggregate": m.aggregate, "each": m.steps_per_s, "peak_mb": m.peak_mb, "error": m.error}
        | ({"gpu_busy": m.gpu_busy} if m.gpu_busy is not None else {})
        for m in measure(job)
    ]


def mps_curve(folder: Path, scene: Path, profile: str, steps: int, fast_path: str) -> list[dict[str, Any]]:
    with private_mps(folder):
        return packing_curve(scene, profile, steps, fast_path)


class Budget:
    """Runs the parts in order, skipping one that its estimate says would overrun the budget."""

    def __init__(self, seconds: float, results: dict[str, Any], out: Path | None):
        self.deadline = time.monotonic() + seconds
        self.results, self.out = results, out

    def run(self, name: str, estimate_s: float, part: Callable[[], Any]) -> Any:
        left = self.deadline - time.monotonic()
        if left < estimate_s:
            print(f"{name}: skipped ({left:.0f} s left, it needs about {estimate_s:.0f})", flush=True)
            return None
        start = time.monotonic()
        try:
            value = part()
        except Exception as error:  # one part failing must not lose the others' figures
            value = {"error": f"{type(error).__name__}: {error}"}
        self.results[name] = value
        print(f"{name} ({time.monotonic() - start:.0f} s): {json.dumps(value, default=str)}", flush=True)
        if self.out:
            self.out.write_text(json.dumps(self.results, indent=2, default=str))
        return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--budget", type=float, default=480, help="seconds for all parts together")
    parser.add_argument("--out", type=Path, help="write every figure here as JSON too")
    parser.add_argument("--parts", default="bare,eager,fast,triton,fp32,graphs,graphs32,model,sweep,packing,auto,mps")
    parser.add_argument("--packing-profiles", default="tiny,small", help="the profiles the packing part measures")
    parser.add_argument("--fast-path", default="auto", choices=["auto", *KINDS], help="the sweeps' and probes' setting")
    args = parser.parse_args()
    if args.device == "cuda":
        assert torch.cuda.is_available(), "this benchmark needs a CUDA GPU (or --device cpu for a rehearsal)"
    parts = args.parts.split(",")
    results: dict[str, Any] = {
        "gpu": ", ".join(gpu.name for gpu in visible_gpus()) or "none",
        "torch": torch.__version__,
        "profile": args.profile,
        "steps": args.steps,
        "fast_path": args.fast_path,
    }
    budget = Budget(args.budget, results, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        scene = write_scene(out / "scene", SceneOptions(frames=60, width=320, height=240))
        dataset = load_dataset(scene)
        view = write_view(dataset, dataset.pool, out / "view")
        print(f"GPU: {results['gpu']}; torch {torch.__version__}; {len(dataset.pool)} training frames, 320x240")
        rate = 5.0 if args.device == "cpu" else 12.0  # a first guess of steps/s, for the estimates
        if "bare" in parts:
            budget.run(
                "bare",
                20 + args.steps / rate,
                lambda: bare_nerfstudio(view, out / "b", args.steps, args.device, args.profile),
            )
        for part, (fast, kind, overrides) in LOOPS.items():
            if part in parts and args.device == "cpu" and part in CUDA_ONLY:
                print(f"{part}: skipped ({CUDA_ONLY[part]})", flush=True)
            elif part in parts:
                budget.run(
                    part,
                    (150 if kind in WHOLE_MODEL else 60 if fast else 20) + args.steps / rate,
                    lambda part=part, fast=fast, kind=kind, more=overrides: trial_loop(
                        view, out / part, args.steps, args.device, args.profile, fast, kind, more
                    ),
                )
        share = 1 / SWEEP_TRIALS if args.device == "cuda" else 0
        if "sweep" in parts:
            budget.run(
                "sweep",
                60 + 4 * args.steps / rate,
                lambda: ray_sweep(scene, out, args.steps, args.profile, share, "gpu-sweep", args.fast_path),
            )
        if "auto" in parts and args.device == "cpu":
            print("auto: skipped (on the CPU, `gpu: auto` is refused before launch)", flush=True)
        elif "auto" in parts:  # `gpu: auto` end to end: the sweep measures its packing, then runs on its choice
            budget.run(
                "auto",
                150 + 2 * args.steps / rate,
                lambda: ray_sweep(scene, out, args.steps, "small", "auto", "gpu-auto", args.fast_path),
            )
        if "packing" in parts:
            for profile in args.packing_profiles.split(","):
                budget.run(f"packing_{profile}", 90, lambda: packing_curve(scene, profile, 40, args.fast_path))
        if "mps" in parts and args.device == "cpu":
            print("mps: skipped (NVIDIA's MPS needs CUDA)", flush=True)
        elif "mps" in parts:
            for profile in args.packing_profiles.split(","):
                curve = lambda: mps_curve(out / "mps", scene, profile, 40, args.fast_path)  # noqa: E731
                budget.run(f"packing_mps_{profile}", 100, curve)
    print_summary(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
