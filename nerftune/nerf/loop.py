"""Training one nerfstudio model in this process, a step at a time, with evaluation and checkpoints.

nerfstudio's `Trainer.train()` owns its loop; a sweep needs to stop at evaluation milestones, report and maybe be
stopped. So this runs nerfstudio's own `Trainer.train_iteration` and training callbacks in a loop of its own, and
sets up the pipeline without the viewer, the event writers or the profiler (their state is module-global in
nerfstudio and would leak from one trial into the next in a reused worker).
"""

from __future__ import annotations

import math
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from nerfstudio.engine.callbacks import TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils import colormaps

from nerftune.data.document_region import resized
from nerftune.finetune import freeze_geometry
from nerftune.legibility import TextCheck
from nerftune.nerf.lpips import install as install_lpips
from nerftune.nerf.region_metrics import region_metrics
from nerftune.nerf.fast_path import WHOLE_MODEL, FastKind, fuse_adam, set_tf32, speed_up, undo_speed_ups
from nerftune.nerf.fast_path import usable_kind, use_fast_contractions, warm_up
from nerftune.nerf.run_state import module_scalars, reset_nerfstudio_globals, restore_module_scalars, seed_everything
from nerftune.outcomes import METRICS


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class Timings:
    setup_s: float = 0.0
    compile_s: float = 0.0  # compiling the fast path's kernels before training (apart from setup_s and train_s)
    train_s: float = 0.0
    eval_s: float = 0.0
    steps_trained: int = 0  # since step 0 (a resumed trial's checkpoint carries the counts before it)


@dataclass
class Evaluation:
    metrics: dict[str, float | None]  # psnr, ssim, lpips (None when unavailable)
    rays_per_s: float  # rendering only
    fps: float
    seconds: float  # rendering and scoring
    images: int
    previews: list[np.ndarray]  # ground truth | render | error map, uint8 (H, 3W, 3), of the first test images
    per_view: dict[str, dict[str, float | None]] = field(default_factory=dict)  # by the image's resolved path


@dataclass
class TrainChunk:
    """The losses of steps [first_step, end_step), checked finite, and their train PSNR (if the model has one)."""

    first_step: int
    end_step: int
    losses: list[float]
    train_psnr: list[float]


@dataclass
class NerfTrainer:
    """A nerfstudio pipeline with its optimizers and callbacks, trained step by step; `fast` compiles its hash
    grids and allows TF32 on CUDA, `compiled_scoring` compiles them for evaluation and rendering only,
    `fast_contraction` computes its scene contraction faster, bit for bit the same (`fast_path.py`)."""

    config: TrainerConfig
    fast: bool = False  # (both false again if compiling fails, say without a C++ compiler: eager code runs)
    kind: FastKind = "grid"  # what `fast` compiles: the hash grids (or Triton fuses them), or the whole step
    compiled_scoring: bool = False
    fast_contraction: bool = False
    compile_error: str | None = None  # why compiling failed
    step: int = 0  # the next step to train = steps done so far
    timings: Timings = field(default_factory=Timings)
    # each test view's document region (by its image's resolved path): adds doc_psnr, doc_ssim and doc_lpips
    document_regions: dict[str, np.ndarray] = field(default_factory=dict)
    text_checks: dict[str, TextCheck] = field(default_factory=dict)  # each test view's document text: adds doc_cer
    colour_only: bool = False  # the fine-tuning stage: geometry frozen, its callbacks skipped (`finetune.py`)
    lpips: bool = True  # False: the model's LPIPS scores NaN, its weights never loaded (nor downloaded)

    def __post_init__(self) -> None:
        start = time.perf_counter()
        reset_nerfstudio_globals()
        install_lpips(self.lpips)
        seed_everything(self.config.machine.seed)
        self.trainer = Trainer(self.config)
        self.trainer.pipeline = self.config.pipeline.setup(
            device=self.trainer.device,
            test_mode="val",
            world_size=1,
            local_rank=0,
            grad_scaler=self.trainer.grad_scaler,
        )
        self.trainer.optimizers = self.trainer.setup_optimizers()
        attributes = TrainingCallbackAttributes(
            optimizers=self.trainer.optimizers,
            grad_scaler=self.trainer.grad_scaler,
            pipeline=self.pipeline,
            trainer=self.trainer,
        )
        if self.colour_only:
            freeze_geometry(self.pipeline.model)
            self.trainer.callbacks = self.pipeline.datamanager.get_training_callbacks(attributes)
        else:
            self.trainer.callbacks = self.pipeline.get_training_callbacks(attributes)
        if self.fast_contraction:
            use_fast_contractions(self.pipeline.model)
        self.timings.setup_s += time.perf_counter() - start
        device = self.config.machine.device_type
        self.kind = usable_kind(self.pipeline, self.kind) if self.fast else "grid"
        if (self.fast or self.compiled_scoring) and speed_up(self.pipeline, self.kind, not self.fast):
            try:
                self.timings.compile_s += warm_up(self, train_pass=self.fast)
            except Exception as error:  # noqa: BLE001 (torch's compile errors have no common base)
                # inductor needs a C++ compiler on the CPU: without one, run eager code and say why
                undo_speed_ups(self.pipeline)
                self.fast = self.compiled_scoring = False
                first_line = (str(error).strip().splitlines() or [""])[0][:300]
                self.compile_error = f"{type(error).__name__}: {first_line}"
                tool = "Triton" if self.kind == "triton" else "torch.compile"
                warnings.warn(f"hash grid uncompiled: {tool} failed ({self.compile_error})")
        set_tf32(self.fast and device == "cuda")
        if self.fast and device == "cuda" and self.kind in WHOLE_MODEL:
            fuse_adam(self.trainer.optimizers)

    @property
    def pipeline(self):
        return self.trainer.pipeline

    @property
    def rays_per_batch(self) -> int:
        return int(self.pipeline.datamanager.get_train_rays_per_batch())

    def train(self, until: int, check_every: int = 50, on_chunk: Callable[[TrainChunk], None] | None = None) -> float:
        """Train steps [self.step, until); returns the mean loss. Raises `DivergedError` on a NaN/inf loss.

        Losses are read back every `check_every` steps only (reading forces a GPU sync) and handed to `on_chunk`.
        An error raised after a NaN loss (NaN weights break the samplers) is reported as the divergence it follows.
        """
        start = time.perf_counter()
        losses: list[float] = []
        pending: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self.pipeline.train()
        while self.step < until:
            try:
                loss, metrics = self._iteration()
            except Exception:
                self._checked_chunk(pending)
                raise
            pending.append((loss.detach(), _detached(metrics.get("psnr"))))
            self.step += 1
            if len(pending) >= check_every or self.step == until:
                chunk = self._checked_chunk(pending)
                pending.clear()
                losses.extend(chunk.losses)
                if on_chunk:
                    on_chunk(chunk)
        self.timings.train_s += time.perf_counter() - start
        self.timings.steps_trained += len(losses)
        return float(np.mean(losses)) if losses else float("nan")

    def _iteration(self) -> tuple[torch.Tensor, dict]:
        for callback in self.trainer.callbacks:
            callback.run_callback_at_location(self.step, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        loss, _, metrics = self.trainer.train_iteration(self.step)
        for callback in self.trainer.callbacks:
            callback.run_callback_at_location(self.step, location=TrainingCallbackLocation.AFTER_TRAIN_ITERATION)
        return loss, metrics

    def _checked_chunk(self, pending: list[tuple[torch.Tensor, torch.Tensor | None]]) -> TrainChunk:
        """The pending steps (those just before `self.step`) read back; raises on the first NaN/inf loss."""
        first = self.step - len(pending)
        losses = torch.stack([loss for loss, _ in pending]).float().cpu().tolist() if pending else []
        for offset, value in enumerate(losses):
            if not math.isfinite(value):
                raise DivergedError(f"diverged at step {first + offset}: loss is {value}")
        psnrs = [p for _, p in pending if p is not None]
        train_psnr = torch.stack(psnrs).float().cpu().tolist() if psnrs else []
        return TrainChunk(first, self.step, losses, train_psnr)

    @torch.no_grad()
    def evaluate(
        self,
        image_indices: Sequence[int] | None = None,
        previews: int = 0,
        on_image: Callable[[int, int], None] | None = None,
    ) -> Evaluation:
        """Render the fixed test images (all, or those indices of the eval split) and average their metrics;
        `on_image(done, total)` is called before the first image and after each."""
        start = time.perf_counter()
        loader = self.pipeline.datamanager.fixed_indices_eval_dataloader
        loader.image_indices = list(image_indices) if image_indices else list(range(len(loader.input_dataset)))
        model = self.pipeline.model
        self.pipeline.eval()
        filenames = loader.input_dataset.image_filenames
        scores, images, rays, render_s = [], [], 0, 0.0
        per_view: dict[str, dict[str, float | None]] = {}
        progress = on_image or (lambda done, total: None)
        progress(0, len(loader.image_indices))
        for camera, batch in loader:
            render_start = time.perf_counter()
            outputs = model.get_outputs_for_camera(camera=camera)
            render_s += time.perf_counter() - render_start
            rays += int(camera.height.item() * camera.width.item())
            rendered = outputs.get("rgb", outputs.get("rgb_fine"))
            score = model.get_image_metrics_and_images(outputs, batch)[0]
            image_path = str(Path(filenames[batch["image_idx"]]).resolve())
            region = self.document_regions.get(image_path)
            if region is not None:
                region = torch.from_numpy(resized(region, *rendered.shape[:2])).to(rendered.device)
                truth = batch["image"].to(rendered.device)
                score.update(region_metrics(truth, rendered, region, getattr(model, "lpips", None)))
            check = self.text_checks.get(image_path)
            if check is not None:
                cer = check.error_rate(batch["image"].float().cpu().numpy(), rendered.float().cpu().numpy())
                score["doc_cer"] = math.nan if cer is None else cer
            scores.append(score)
            per_view[image_path] = {key: _mean_metric([score], key) for key in METRICS}
            if len(images) < previews:
                images.append(side_by_side(batch["image"], rendered))
            progress(len(scores), len(loader.image_indices))
        self.pipeline.train()
        seconds = time.perf_counter() - start
        self.timings.eval_s += seconds
        return Evaluation(
            metrics={key: _mean_metric(scores, key) for key in METRICS},
            rays_per_s=rays / max(render_s, 1e-9),
            fps=len(scores) / max(render_s, 1e-9),
            seconds=seconds,
            images=len(scores),
            previews=images,
            per_view=per_view,
        )

    def save(self, path: Path) -> None:
        """A checkpoint in nerfstudio's own format (loadable by `ns-render` and friends) plus the RNG states."""
        torch.save(
            {
                "step": self.step - 1,  # nerfstudio's convention: the last step trained
                "pipeline": self.pipeline.state_dict(),
                "optimizers": {k: v.state_dict() for k, v in self.trainer.optimizers.optimizers.items()},
                "schedulers": {k: v.state_dict() for k, v in self.trainer.optimizers.schedulers.items()},
                "scalers": self.trainer.grad_scaler.state_dict(),
                "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
                "module_scalars": module_scalars(self.pipeline),
                "timings": asdict(self.timings),  # a trial's times and speeds span its resumes
            },
            path,
        )

    def load(self, path: Path, optimizers: bool = True) -> None:
        """Continue from a checkpoint written by `save` (or by nerfstudio's trainer) for the same dataset view;
        `optimizers` false keeps this trainer's own fresh optimizers (a new stage)."""
        # weights_only=False: the checkpoint holds optimizer and RNG state, not only tensors (torch >= 2.6 default)
        state = torch.load(path, map_location="cpu", weights_only=False)
        self.pipeline.load_pipeline(state["pipeline"], state["step"])
        if optimizers:
            self.trainer.optimizers.load_optimizers(state["optimizers"])
            if "schedulers" in state:
                self.trainer.optimizers.load_schedulers(state["schedulers"])
            self.trainer.grad_scaler.load_state_dict(state["scalers"])
        if "rng" in state:
            random.setstate(state["rng"]["python"])
            np.random.set_state(state["rng"]["numpy"])
            torch.set_rng_state(state["rng"]["torch"])
        restore_module_scalars(self.pipeline, state.get("module_scalars", {}))
        if "timings" in state:
            this_process = self.timings  # this process's setup and compiling count too
            self.timings = Timings(**state["timings"])
            self.timings.setup_s += this_process.setup_s
            self.timings.compile_s += this_process.compile_s
        self.step = state["step"] + 1


def _mean_metric(scores: list[dict[str, float]], key: str) -> float | None:
    """The mean over images; mipnerf and vanilla-nerf report their fine network's metrics as `fine_*`."""
    values = [score.get(f"fine_{key}", score.get(key)) for score in scores]
    values = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else None


def _detached(value: Any) -> torch.Tensor | None:
    return value.detach() if isinstance(value, torch.Tensor) else None


def side_by_side(ground_truth: torch.Tensor, render: torch.Tensor) -> np.ndarray:
    """Ground truth | render | per-pixel error (inferno colour map), as one uint8 image."""
    truth = ground_truth[..., :3].float().to(render.device)
    error = colormaps.apply_colormap((truth - render).abs().mean(-1, keepdim=True).clamp(0, 1))
    row = torch.cat([truth, render, error.to(render.device)], dim=1).clamp(0, 1)
    return (row.cpu().numpy() * 255 + 0.5).astype(np.uint8)
