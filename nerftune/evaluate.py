"""`nerftune eval SWEEP_DIR`: one CSV row per trial and evaluated step, optionally re-evaluated from the checkpoints.

nerftune eval sweeps/frames                      # from what the trials reported
nerftune eval sweeps/frames --reevaluate        # render the fixed test set again from every saved checkpoint
nerftune eval sweeps/frames --views             # also a row per test view: SWEEP_DIR/evaluation_views.csv
                                                 # and per rendered novel view: evaluation_novel_views.csv

Columns: trial_id, method, frames, frames_used, seed, steps, the searched values, step, stage (with a `finetune`
stage: rgb or finetune), psnr, ssim, lpips, doc_psnr, doc_ssim, doc_lpips, doc_cer, test_images, rays_per_s
(training), eval_rays_per_s, fps (test-set rendering), train_s, eval_s, checkpoint, reevaluated, data_hash. LPIPS
is empty where its network weights could not be had (one warning says how to provide them), doc_cer where Tesseract
is missing. --reevaluate refuses trials whose data changed since they trained (it would score other images).
--views: a row per trial, whole-test-set scoring and test view, with the same settings columns, the view's metrics and
its novelty for the trial (`test_view_scores.csv` of each trial folder, missing in older trials; with --reevaluate,
each re-evaluated checkpoint's views instead); and where trials were rendered, a row per trial, camera path and novel
view with the same settings columns, the view's novelty and its text's doc_cer (each render's `views.csv`).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from nerftune.cli import described
from nerftune.errors import InputError, output_place
from nerftune.outcomes import LPIPS_MISSING, METRICS
from nerftune.quiet import quiet_output
from nerftune.scoring_progress import Notices, how_far
from nerftune.trials import RECIPE_FILE, STANDARD_DIMENSIONS, milestones, read_recipe, trial_folders

EVAL_LOG = "eval.log"  # in the sweep's folder: what nerfstudio printed while `--reevaluate` loaded checkpoints
FIXED_COLUMNS = [
    "trial_id",
    "method",
    "frames",
    "frames_used",
    "seed",
    "steps",
    "step",
    "stage",  # with a `finetune` stage: rgb or finetune (which images the metrics score); dropped without one
    *METRICS,
    "test_images",
    "rays_per_s",
    "eval_rays_per_s",
    "fps",
    "train_s",
    "eval_s",
    "checkpoint",
    "reevaluated",
    "data_hash",  # the content of the data the trial trained on: rows of several sweeps with one value compare
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nerftune eval", description=described(__doc__))
    parser.add_argument("sweep", type=Path, help="the sweep's folder, e.g. sweeps/frames")
    parser.add_argument("--out", type=Path, help="the CSV to write (default: SWEEP_DIR/evaluation.csv)")
    parser.add_argument("--reevaluate", action="store_true", help="re-render the test set from saved checkpoints")
    parser.add_argument(
        "--views", action="store_true", help="also each test view's scores and novelty, and each rendered novel view's"
    )
    parser.add_argument("--verbose", action="store_true", help="show nerfstudio's output (else: SWEEP_DIR/eval.log)")
    args = parser.parse_args(argv)
    out = args.out or args.sweep / "evaluation.csv"
    try:
        trial_folders(args.sweep)  # a sweep's folder first: bad input writes no eval.log
        output_place(out)  # before any re-evaluation: it can take hours
        if args.reevaluate:  # nerfstudio speaks as each checkpoint loads: into the sweep's eval.log
            with quiet_output(args.sweep / EVAL_LOG, args.verbose) as terminal:
                table, scored_views = evaluation_table(args.sweep, True, terminal.say)
        else:
            table, scored_views = evaluation_table(args.sweep)
    except InputError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    if table["lpips"].isna().all():
        print(f"warning: {LPIPS_MISSING} Then run `nerftune eval --reevaluate`.", file=sys.stderr)
    shown = [c for c in ("trial_id", "frames", "seed", "step", *METRICS, "fps") if c in table]
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{out}: {len(table)} rows ({table.trial_id.nunique()} trials)")
    if args.views:
        views = views_table(args.sweep, table, scored_views)
        views_out = out.with_name(f"{out.stem}_views.csv")
        views.to_csv(views_out, index=False)
        print(f"{views_out}: {len(views)} rows ({views.trial_id.nunique()} trials' test views)")
        novel = novel_views_table(args.sweep, table)
        if len(novel):
            novel_out = out.with_name(f"{out.stem}_novel_views.csv")
            novel.to_csv(novel_out, index=False)
            print(f"{novel_out}: {len(novel)} rows ({novel.trial_id.nunique()} rendered trials' novel views)")
    if args.reevaluate and not args.verbose:
        print(f"nerfstudio's own output: {args.sweep / EVAL_LOG}")
    return 0


def evaluation_table(
    sweep_dir: Path, reevaluate: bool = False, say: Callable[[str], None] = print
) -> tuple[pd.DataFrame, list[dict]]:
    """The table; with `reevaluate`, each saved checkpoint scored again, with a line `say`s as each is done, and its
    views' rows (as `test_view_scores.csv` has them, with trial_id)."""
    rows, views = [], []
    trials = [(folder, read_recipe(folder)) for folder in trial_folders(sweep_dir)]
    searched = sorted({k for _, recipe in trials for k in recipe.config} - set(STANDARD_DIMENSIONS))
    if reevaluate:
        for folder, recipe in trials:
            _check_data_unchanged(folder, recipe)
    reports = {folder: milestones(folder) for folder, _ in trials}
    saved = sum(bool(report["checkpoint"]) for found in reports.values() for report in found)
    done, started = 0, time.monotonic()
    for folder, recipe in trials:
        for report in reports[folder]:
            row = {key: report.get(key) for key in FIXED_COLUMNS}
            row.update({k: recipe.config.get(k) for k in (*STANDARD_DIMENSIONS, *searched)})
            row.update(
                trial_id=recipe.trial_id, steps=recipe.config["steps"], reevaluated=False, data_hash=recipe.data_hash
            )
            if reevaluate and report["checkpoint"]:
                scores, scored_views = _reevaluate(recipe, Path(report["checkpoint"]), say)
                row.update(scores, reevaluated=True)
                views += [{"trial_id": recipe.trial_id, **view} for view in scored_views]
                done, elapsed = done + 1, time.monotonic() - started
                progress = how_far(done, saved, elapsed, elapsed, unit="checkpoints")
                say(f"trial {recipe.trial_id} step {row['step']}: psnr {row['psnr']:.3f} ({progress})")
            rows.append(row)
    table = pd.DataFrame(rows, columns=FIXED_COLUMNS[:6] + searched + FIXED_COLUMNS[6:])
    if table["stage"].isna().all():
        table = table.drop(columns="stage")
    return table.astype({metric: float for metric in METRICS}), views


def views_table(sweep_dir: Path, table: pd.DataFrame, reevaluated: list[dict]) -> pd.DataFrame:
    """A row per trial, whole-test-set scoring and view: `table`'s settings columns, then the `reevaluated` views, or
    else the trials' recorded `test_view_scores.csv`."""
    from nerftune.view_scores import VIEW_SCORES_FILE

    recorded = [pd.DataFrame(reevaluated)] if reevaluated else [
        pd.read_csv(folder / VIEW_SCORES_FILE).assign(trial_id=read_recipe(folder).trial_id)
        for folder in trial_folders(sweep_dir)
        if (folder / VIEW_SCORES_FILE).is_file()
    ]
    return _with_settings(recorded, table, ["step", "view"])


def novel_views_table(sweep_dir: Path, table: pd.DataFrame) -> pd.DataFrame:
    """A row per rendered trial, camera path and novel view: `table`'s settings columns, the path's name, then its
    `views.csv` (novelty, doc_cer, ...; `image` relative to the sweep's folder)."""
    rendered = [
        pd.read_csv(views).assign(
            trial_id=read_recipe(folder).trial_id,
            path=views.parent.name,
            image=lambda v, at=views.parent: [os.path.relpath(at / image, sweep_dir) for image in v.image],
        )
        for folder in trial_folders(sweep_dir)
        for views in sorted(folder.glob("renders/*/views.csv"))
    ]
    return _with_settings(rendered, table, ["path", "view"])


def _with_settings(found: list[pd.DataFrame], table: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    """Per-trial rows of views with `table`'s settings columns (trial_id to the searched values) in front, then
    `first`, then the rest."""
    settings = table.columns[: table.columns.get_loc("step")].tolist()
    if not found:
        return pd.DataFrame(columns=[*settings, *first])
    per_trial = table.drop_duplicates("trial_id").set_index("trial_id")[settings[1:]]
    views = pd.concat(found, ignore_index=True)
    rest = [c for c in views if c != "trial_id" and c not in first]
    return views.join(per_trial, on="trial_id")[[*settings, *first, *rest]]


def _check_data_unchanged(folder: Path, recipe) -> None:
    """Re-evaluating scores the test images as they are now: refused, before any rendering, where they changed."""
    now = _dataset(recipe.data_dir, recipe.test_every).data_hash
    if recipe.data_hash and recipe.data_hash != now:
        raise InputError(
            folder / RECIPE_FILE,
            "data_hash",
            f"trial {recipe.trial_id} trained on {recipe.data_dir} before its frames changed (data hash "
            f"{recipe.data_hash}, now {now}): re-evaluating would score it on other images",
            "restore the data, or export what the trials reported (without --reevaluate)",
        )


@functools.cache
def _dataset(data_dir: str, test_every: int):
    from nerftune.data.dataset import load_dataset

    return load_dataset(data_dir, test_every, check_images=False)


@functools.cache
def _dataset_and_documents(data_dir: str, test_every: int) -> tuple:
    """The dataset, its test views' document regions and text checks, read once (every milestone of every trial
    shares them)."""
    from nerftune.data.document_region import view_regions, view_text_checks

    dataset = _dataset(data_dir, test_every)
    return dataset, view_regions(dataset), view_text_checks(dataset)


def _set_documents(recipe, trainer) -> None:
    """The documents keyed by the images the trainer's view scores (a fine-tuned model's: its segmentation images)."""
    from nerftune.finetune import by_segmentation_image

    dataset, regions, text = _dataset_and_documents(recipe.data_dir, recipe.test_every)
    if trainer.colour_only:
        regions, text = (by_segmentation_image(dataset, trainer.config.data, found) for found in (regions, text))
    trainer.document_regions, trainer.text_checks = regions, text


def _reevaluate(recipe, checkpoint: Path, say: Callable[[str], None]) -> tuple[dict[str, Any], list[dict]]:
    """The full fixed test set rendered from the checkpoint, with the trial's own model and dataset view (`say`ing
    how far it is where that takes a while): the metrics, and a row per view."""
    from nerftune.evaluation_cost import test_rays
    from nerftune.nerf.render import load_trained

    with tempfile.TemporaryDirectory() as work:
        rays = test_rays(_dataset(recipe.data_dir, recipe.test_every))
        trainer = load_trained(recipe, checkpoint, Path(work), rays=rays)
        _set_documents(recipe, trainer)
        evaluation = trainer.evaluate(on_image=Notices(say, f"trial {recipe.trial_id} step {trainer.step}", "images"))
    metrics = {k: (v if v is not None and math.isfinite(v) else None) for k, v in evaluation.metrics.items()}
    scores = {
        **metrics,
        "test_images": evaluation.images,
        "eval_rays_per_s": evaluation.rays_per_s,
        "fps": evaluation.fps,
        "step": trainer.step,
    }
    return scores, _view_scores(recipe, trainer).rows(trainer.step, evaluation.per_view)


def _view_scores(recipe, trainer):
    """What names and places the views of the trial's scoring: its training frames, from its dataset view."""
    from nerftune.finetune import by_segmentation_image
    from nerftune.view_scores import ViewScores

    dataset = _dataset(recipe.data_dir, recipe.test_every)
    by_path = dataset.names_by_path(dataset.frame_names)
    trained = json.loads((Path(recipe.view_dir) / "transforms.json").read_text())["train_filenames"]
    scores = ViewScores.of(Path(recipe.view_dir).parent, dataset, [by_path[str(Path(p).resolve())] for p in trained])
    if trainer.colour_only:  # a fine-tuned model scores the views' segmentation images
        scores = replace(scores, names=by_segmentation_image(dataset, trainer.config.data, scores.names))
    return scores
