"""One trial of a sweep as a Ray Tune function trainable: build the config, train, evaluate at milestones, report.

The trial trains in its Ray worker process (no subprocess). At each milestone (the ASHA rungs, `eval.every` and the
last step) it evaluates the sweep's fixed test set and reports `step`, the metrics and the timings with a
checkpoint, so ASHA can stop it there and an interrupted trial continues from its last milestone.
"""

from __future__ import annotations

import json
import socket
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
from ray import tune

from nerftune.data.dataset import load_dataset, require_content
from nerftune.data.document_region import view_regions, view_text_checks
from nerftune.nerf import device as nerf_device
from nerftune.nerf.config import build_config, config_yaml, key_values
from nerftune.evaluation_cost import test_rays
from nerftune.nerf.fast_path import choose, implementation
from nerftune.nerf.loop import Evaluation, NerfTrainer, TrainChunk
from nerftune.mask_error import split_metrics
from nerftune.novel_views import render_metrics, render_views
from nerftune.outcomes import FINETUNE, MASK_ERROR_COLUMNS, METRICS, MILESTONE_METRICS, RGB, STAGE_COLUMNS, better
from nerftune.dimensions import FINETUNE_STEPS, INIT_FROM, MASK_ERROR, total_steps
from nerftune.finetune import by_segmentation_image, segmentation_view, stage_metrics
from nerftune.scoring_progress import ScoringProgress, clear_scoring
from nerftune.trial_plan import RenderPlan, TrialPlan
from nerftune.trial_view import trial_view
from nerftune.tracking import PENDING_FILE, TrialRun
from nerftune.trials import CHECKPOINT_FILE, MILESTONE_FILE, TrialRecipe, locate, read_recipe, write_recipe
from nerftune.view_scores import ViewScores
from nerftune.warm_start import WARM_START_FILE, Source


def run_trial(config: dict[str, Any], plan: TrialPlan) -> None:
    wall_start = time.perf_counter()
    context = tune.get_context()
    trial_dir = plan.trial_dir(context.get_trial_dir())
    steps, total = int(config["steps"]), total_steps(config)  # the RGB stage's steps, and with fine-tuning
    finetuning = FINETUNE_STEPS in config  # a sweep with a `finetune` stage (0 steps of it: the baseline)
    scene = plan.scene_of(config)
    data_dir, test_every = plan.scenes[scene]
    dataset = load_dataset(data_dir, test_every, check_images=False)  # checked before the sweep started
    require_content(dataset, plan.data_hashes[scene])  # not a node's stale copy
    train_indices, view, provenance, near_error = trial_view(config, dataset, trial_dir)
    recipe = TrialRecipe(
        context.get_trial_id(), config, plan.profile, data_dir, test_every, str(view), dataset.data_hash
    )
    write_recipe(trial_dir, recipe)
    clear_scoring(trial_dir)  # an earlier attempt killed while scoring
    device = nerf_device.for_trial(plan.cpus_per_trial)

    def nerf_config_for(view_dir: Path):
        output = trial_dir / "nerfstudio"
        return build_config(
            config["method"], view_dir, output, total, int(config["seed"]), device, plan.profile, recipe.overrides
        )

    nerf_config = nerf_config_for(view)
    fast_path = choose(plan.fast_path, nerf_config, device, steps, test_rays(dataset))
    regions, text = view_regions(dataset), view_text_checks(dataset)
    trainer = NerfTrainer(nerf_config, **fast_path, document_regions=regions, text_checks=text)
    # where this attempt runs and what computes its hash grid (a retried trial may run on another node)
    placement = {
        "device": device,
        **nerf_device.describe(device),
        "implementation": implementation(nerf_config, trainer.fast, trainer.compiled_scoring, trainer.kind),
        "compile_error": trainer.compile_error,  # compiling failed: the console says so
        "host": socket.gethostname(),
        "node_id": ray.get_runtime_context().get_node_id(),  # the Ray node: which machine of a cluster
    }
    facts = dict(provenance)  # what the trial was allowed to see: its own poses, corrupted masks, warm start
    resumed_from, last_report = _resume(trainer)
    warm = (
        _warm_start(trainer, plan, config, trial_dir, resumed=last_report is not None) if INIT_FROM in config else None
    )
    if warm:
        facts.update(warm_shared_frames=len(warm["shared"]), warm_new_frames=len(warm["new"]))
    if last_report is not None:
        # the restored milestone is reported again: a replicate that was waiting at a rung for its siblings
        # waits there again, rather than training on to the next milestone first
        wall_start -= last_report["wall_s"]
        _report({**last_report, "resumed_from_step": resumed_from}, trainer)
    pending = trial_dir / PENDING_FILE
    run = TrialRun(plan.tracking, context.get_trial_id(), context.get_trial_name(), pending) if plan.tracking else None
    train_names = [dataset.frame_names[i] for i in train_indices]
    view_scores = ViewScores.of(trial_dir, dataset, train_names)
    if run:
        known = lambda values: {k: v for k, v in values.items() if v is not None}  # noqa: E731 (no GPU name on a CPU)
        run.set_tags(known(placement))  # tags, which a retried trial on another node may change; params cannot
        _log_setup(run, {**config, **known(facts)}, nerf_config, train_names, dataset.test_names)
        if near_error:
            run.log_folder(trial_dir / MASK_ERROR, MASK_ERROR)
        if (trial_dir / WARM_START_FILE).is_file():
            run.log_file(trial_dir / WARM_START_FILE)
    eval_indices = plan.eval_indices(len(dataset.test_indices))
    stage_ends = {steps} if finetuning else set()  # the RGB stage's end is a milestone: rgb_* are its metrics
    milestones = sorted(m for m in {*plan.milestones(total), *stage_ends} if m > trainer.step)
    best: float | None = None
    by_stage = {k: v for k, v in (last_report or {}).items() if k in STAGE_COLUMNS[1:]}
    for milestone in milestones:
        if milestone > steps and finetuning and not trainer.colour_only:
            segmented = segmentation_view(dataset, train_indices, trial_dir)
            trainer = start_fine_tuning(
                trainer, nerf_config_for(segmented), dataset, segmented, resumed=trainer.step > steps
            )
            best = None  # the best checkpoint is the fine-tuned model's: its metrics score other images
            if near_error:  # the same test views, now scored on their segmentation images
                moved = by_segmentation_image(dataset, segmented, dict.fromkeys(near_error.views))
                near_error = replace(near_error, views=set(moved))
            view_scores = replace(view_scores, names=by_segmentation_image(dataset, segmented, view_scores.names))
        on_chunk = (lambda chunk: _queue_train_metrics(run, chunk)) if run else None
        train_loss = trainer.train(milestone, check_every=plan.train_log_every, on_chunk=on_chunk)
        last = milestone == milestones[-1]
        # the last milestone scores every test image: rankings and reports rest on the whole test set
        full = last or milestone in stage_ends
        progress = ScoringProgress(trial_dir, trainer.step)
        try:
            evaluation = trainer.evaluate(
                None if full else eval_indices, previews=_previews_wanted(plan, last), on_image=progress
            )
        finally:
            progress.close()
        if evaluation.images == len(dataset.test_indices):  # each view's scores beside its novelty for this trial
            scores_file = view_scores.write(trainer.step, evaluation.per_view)
            if run and last:
                run.log_file(scores_file)
        timings = trainer.timings
        value = evaluation.metrics.get(plan.metric)
        improved = value is not None and better(value, best, plan.mode)
        best = value if improved else best
        metrics = {
            "step": trainer.step,
            "target_steps": total,
            **evaluation.metrics,
            "train_loss": train_loss,
            "steps_per_s": timings.steps_trained / max(timings.train_s, 1e-9),
            "rays_per_s": timings.steps_trained * trainer.rays_per_batch / max(timings.train_s, 1e-9),
            "eval_rays_per_s": evaluation.rays_per_s,
            "fps": evaluation.fps,
            "train_s": timings.train_s,
            "eval_s": timings.eval_s,
            "setup_s": timings.setup_s,
            "compile_s": timings.compile_s,
            "wall_s": time.perf_counter() - wall_start,
            "peak_gpu_mb": nerf_device.peak_memory_mb(),
            "frames_used": len(train_indices),
            "test_images": evaluation.images,
            "full_test": evaluation.images == len(dataset.test_indices),
            **(split_metrics(evaluation.per_view, near_error.views) if near_error else {}),
            "resumed_from_step": resumed_from,
            **placement,
            **facts,
        }
        if finetuning:
            stage = FINETUNE if trainer.colour_only else RGB
            by_stage.update(stage_metrics(evaluation.metrics, stage))
            metrics.update(stage=stage, **by_stage)
        if plan.render and trainer.step == total:
            metrics.update(_render(plan.render, scene, trainer, view, trial_dir, run))
        if run:
            metrics["mlflow_run_id"] = run.run_id
            metrics["tracking_failures"] = run.failures
        with _report(metrics, trainer) as checkpoint_path:
            if run:
                _log_milestone(run, plan, metrics, evaluation, checkpoint_path, improved, last)
                metrics["tracking_failures"] = run.failures


def _warm_start(trainer: NerfTrainer, plan: TrialPlan, config: dict[str, Any], trial_dir: Path, resumed: bool) -> dict:
    """A fresh trial's weights from its `init_from` source, rows matched by frame; the mapping is kept (and read
    back by a resumed trial, whose checkpoint holds its weights)."""
    from nerftune.nerf.initialise import initialise_from

    if resumed:
        return json.loads((trial_dir / WARM_START_FILE).read_text())
    trial, checkpoint = locate(Path(plan.init_sources[config[INIT_FROM]]))
    mapping = initialise_from(trainer, Source(config[INIT_FROM], trial, checkpoint, read_recipe(trial)))
    (trial_dir / WARM_START_FILE).write_text(json.dumps(mapping, indent=1))
    return mapping


def start_fine_tuning(rgb: NerfTrainer, nerf_config, dataset, segmented: Path, resumed: bool) -> NerfTrainer:
    """The fine-tuning stage's trainer on the segmentation view, with the RGB stage's weights (and, for a trial
    resumed within fine-tuning, the optimizers its checkpoint holds)."""
    regions = by_segmentation_image(dataset, segmented, rgb.document_regions)
    text = by_segmentation_image(dataset, segmented, rgb.text_checks)
    finetuned = NerfTrainer(
        nerf_config,
        fast=rgb.fast,
        compiled_scoring=rgb.compiled_scoring,
        fast_contraction=rgb.fast_contraction,
        document_regions=regions,
        text_checks=text,
        colour_only=True,
    )
    with tempfile.TemporaryDirectory() as handover:
        rgb.save(Path(handover) / CHECKPOINT_FILE)
        finetuned.load(Path(handover) / CHECKPOINT_FILE, optimizers=resumed)
    return finetuned


@contextmanager
def _report(metrics: dict[str, Any], trainer: NerfTrainer):
    """Report a milestone with a checkpoint: the model's state and the metrics themselves (`milestone.json`)."""
    with tempfile.TemporaryDirectory() as checkpoint_dir:
        checkpoint_path = Path(checkpoint_dir) / CHECKPOINT_FILE
        trainer.save(checkpoint_path)
        yield checkpoint_path
        (Path(checkpoint_dir) / MILESTONE_FILE).write_text(json.dumps(metrics))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(checkpoint_dir))


def _log_setup(
    run: TrialRun, params: dict[str, Any], nerf_config, train_names: list[str], test_names: list[str]
) -> None:
    run.log_params({**params, **key_values(nerf_config), "frames_used": len(train_names)})
    run.log_text(config_yaml(nerf_config), "config.yml")
    run.log_text("\n".join(train_names) + "\n", "frames/train.txt")
    run.log_text("\n".join(test_names) + "\n", "frames/test.txt")


def _queue_train_metrics(run: TrialRun, chunk: TrainChunk) -> None:
    values = {"train_loss": sum(chunk.losses) / len(chunk.losses)}
    if chunk.train_psnr:
        values["train_psnr"] = sum(chunk.train_psnr) / len(chunk.train_psnr)
    run.queue_metrics(values, chunk.end_step)


def _previews_wanted(plan: TrialPlan, last: bool) -> int:
    tracking = plan.tracking
    if tracking is None or tracking.images == "none" or (tracking.images == "end" and not last):
        return 0
    return tracking.preview_images


def _log_milestone(
    run: TrialRun,
    plan: TrialPlan,
    metrics: dict[str, Any],
    evaluation: Evaluation,
    checkpoint: Path,
    improved: bool,
    last: bool,
) -> None:
    step = metrics["step"]
    split = {k: metrics[k] for k in MASK_ERROR_COLUMNS[1:] if k in metrics}  # the mask-error study's
    scored = {k: metrics[k] for k in MILESTONE_METRICS}
    if metrics.get("stage") == FINETUNE:  # MLflow's psnr stays the RGB stage's; fine-tuning's is finetune_psnr
        scored = {(f"{FINETUNE}_{k}" if k in METRICS else k): v for k, v in scored.items()}
    run.queue_metrics({**scored, **split}, step)
    run.flush()
    for index, image in enumerate(evaluation.previews):
        run.log_image(image, f"renders/step_{step:06d}_test{index}.png")
    wanted = plan.tracking.checkpoints
    if (wanted == "best" and improved) or (wanted == "last" and last):
        run.log_file(checkpoint, "checkpoint")


def _render(
    render: RenderPlan, scene: str, trainer: NerfTrainer, view: Path, trial_dir: Path, run: TrialRun | None
) -> dict[str, float | None]:
    """Render the completed trial's novel views; their metrics (`render_metrics`) join its last report, and its run
    (sent with the milestone's)."""
    out = trial_dir / "renders" / render.name
    camera_paths = render.camera_paths[scene]
    summary = render_views(trainer, view, camera_paths, out, render.video, render.crop, legibility=render.legibility)
    metrics = render_metrics(summary)
    if run:
        run.log_folder(out, f"renders/{render.name}")
        run.queue_metrics(metrics, trainer.step)
    return metrics


def _resume(trainer: NerfTrainer) -> tuple[int, dict[str, Any] | None]:
    """Continue from the trial's last checkpoint when Ray restored it: the step it resumed at (0: fresh) and the
    metrics reported with that checkpoint."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return 0, None
    with checkpoint.as_directory() as directory:
        trainer.load(Path(directory) / CHECKPOINT_FILE)
        reported = Path(directory) / MILESTONE_FILE
        return trainer.step, json.loads(reported.read_text()) if reported.is_file() else None
