"""`nerftune render`: a trial's renders along camera paths (made by `nerftune paths`, see `camera_paths`).

nerftune render sweeps/frames/train_trial_xxx --paths card_paths.json --video

`render` moves a paths file into the trial's model frame (written as camera_path.json, which `ns-render
camera-path` reads with the trial's config), renders every view, scores how novel each view is for that trial's
training frames, and writes images/, views.csv, render.json (and path.mp4 with --video); then adds them, with the
views' mean doc_cer, to the trial's MLflow run.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from nerftune import paths
from nerftune.camera_paths import read_paths
from nerftune.data.dataset import pose_matrix
from nerftune.data.poi import Crop
from nerftune.errors import InputError, output_place
from nerftune.novel_legibility import novel_error_rates
from nerftune.outcomes import NOVEL_VIEWS
from nerftune.quiet import quiet_output
from nerftune.scoring_progress import Notices
from nerftune.spec import SCENE
from nerftune.trials import locate, read_recipe, trial_folders

RENDER_LOG = "render.log"  # in the trial's folder: what nerfstudio printed while the trial loaded and rendered
VIEW_COLUMNS = (
    "view",
    "segment",
    "image",
    "angle_deg",
    "distance",
    "novelty",
    "label",
    "nearest_train_frame",
    "doc_cer",
    "render_s",
)


def render_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nerftune render", description="render a trial along camera paths")
    parser.add_argument("trial", type=Path, help="a trial folder (its latest checkpoint), checkpoint folder or file")
    parser.add_argument("--paths", type=Path, required=True, help="a paths file from `nerftune paths`")
    parser.add_argument("--out", type=Path, help="output folder (default: TRIAL/renders/PATHS_NAME)")
    parser.add_argument("--video", action="store_true", help="also write path.mp4")
    parser.add_argument("--no-crop", action="store_true", help="render what lies in front of the document too")
    parser.add_argument(
        "--no-legibility", action="store_true", help="leave out each view's doc_cer (OCR of the document's text)"
    )
    parser.add_argument("--tracking-uri", help="the MLflow server the sweep logged to (default: the sweep's own)")
    parser.add_argument("--verbose", action="store_true", help="show nerfstudio's own output (else: TRIAL/render.log)")
    args = parser.parse_args(argv)
    try:
        trial_dir, checkpoint = locate(args.trial)
        read_recipe(trial_dir)  # a trial without its recipe is refused here, before render.log is made
        camera_paths = read_paths(args.paths)
        out = args.out or trial_dir / "renders" / args.paths.stem
        output_place(out, folder=True)
    except InputError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        return 2
    with quiet_output(trial_dir / RENDER_LOG, args.verbose) as terminal:
        summary = render_trial(
            trial_dir, checkpoint, camera_paths, out, args.video, not args.no_crop, terminal.say, not args.no_legibility
        )
        read = summary["doc_cer_views"]
        legible = f"; document text CER {summary['doc_cer']:.3f} (mean of {read} views that show it)" if read else ""
        terminal.say(
            f"{out}: {summary['views']} views at {summary['fps']:.2f} fps (step {summary['step']}), "
            f"crop {'on' if summary['crop'] else 'off'}{legible}"
        )
        from nerftune.tracking import log_to_trial_run

        metrics, artifacts = render_metrics(summary, f".{out.name}"), f"renders/{out.name}"
        terminal.say(log_to_trial_run(trial_dir, out, artifacts, args.tracking_uri, metrics, summary["step"]))
        if not args.verbose:
            terminal.say(f"nerfstudio's own output: {trial_dir / RENDER_LOG}")
    return 0


def render_trial(
    trial_dir: Path,
    checkpoint: Path,
    camera_paths: dict,
    out: Path,
    video: bool,
    crop: bool,
    say: Callable[[str], None] | None = None,
    legibility: bool = True,
) -> dict:
    """Load a trial's checkpoint with its own recipe and view, render the paths into `out` (`say`ing how far a long
    render is); returns render.json."""
    from nerftune.nerf.render import load_trained

    recipe = read_recipe(trial_dir)
    with tempfile.TemporaryDirectory() as work:
        views, size = len(camera_paths["camera_path"]), camera_paths["render_width"] * camera_paths["render_height"]
        trainer = load_trained(recipe, checkpoint, Path(work), rays=views * size, scores=False)
        on_view = Notices(say, f"rendering trial {recipe.trial_id}", "views") if say else None  # timed from here
        summary = render_views(trainer, Path(recipe.view_dir), camera_paths, out, video, crop, on_view, legibility)
    summary.update(trial_id=recipe.trial_id, checkpoint=str(checkpoint))
    (out / "render.json").write_text(json.dumps(summary, indent=2))  # with where it came from
    return summary


def render_best_trials(
    prepared, table, target, say: Callable[[str], None]
) -> Iterator[tuple[str, str, dict[str, float | None]]]:
    """After a sweep: render the best K completed trials (by the sweep's metric) from their last checkpoints, in
    this process, into their folders and MLflow runs; yields, per trial as it is done, a line to show, its id and its
    render's metrics (`render_metrics`), and `say`s how far a long render is."""
    from nerftune.outcomes import StopReason
    from nerftune.tracking import log_trial_folder

    spec, name = prepared.spec, prepared.camera_paths_name
    best_column = f"best_{spec.metric.name}"
    done = table[(table.stop_reason == StopReason.COMPLETED.value) & table[best_column].notna()]
    ranked = done.sort_values(best_column, ascending=spec.metric.mode == "min")
    # the best K of each scene of a study (along that scene's own camera paths), and of each value of `render.per`
    groups = render_groups(spec)
    best = ranked.groupby(groups, sort=False).head(spec.render.best_k) if groups else ranked.head(spec.render.best_k)
    folders = {read_recipe(folder).trial_id: folder for folder in trial_folders(prepared.experiment_dir)}
    for row in best.to_dict("records"):
        trial_id = row["trial_id"]
        folder, checkpoint = locate(folders[trial_id])
        out = folder / "renders" / name
        camera_paths = prepared.scenes[row.get(SCENE, next(iter(prepared.scenes)))].camera_paths
        render = spec.render
        summary = render_trial(folder, checkpoint, camera_paths, out, render.video, render.crop, say, render.legibility)
        metrics = render_metrics(summary)
        logged = target and log_trial_folder(target, trial_id, out, f"renders/{name}", metrics, summary["step"])
        line = f"rendered trial {trial_id}: {summary['views']} views at {summary['fps']:.2f} fps -> {out}"
        yield line + (" (and MLflow)" if logged else ""), trial_id, metrics


def render_groups(spec) -> list[str]:
    """What `render: {trials: best}` picks the best K of each of: scenes, and the values of `render.per`."""
    return ([SCENE] if SCENE in spec.searched else []) + list(spec.render.per)


def rendered_trials_text(spec) -> str:
    """Which trials render, in words: "the best trial per frames", "each of the 3 best trials", "every trial..."."""
    render = spec.render
    if render.trials == "each":
        return "every trial as it completes"
    groups = render_groups(spec)
    per = f" per {' x '.join(groups)}" if groups else ""
    best_k = render.best_k if groups else min(render.best_k, spec.trial_count)  # a sweep of 2 trials renders 2
    return f"the best trial{per}" if best_k == 1 else f"each of the {best_k} best trials{per}"


def render_views(
    trainer,
    view_dir: Path,
    camera_paths: dict,
    out: Path,
    video: bool,
    use_crop: bool,
    on_view: Callable[[int, int], None] | None = None,
    legibility: bool = True,
) -> dict[str, Any]:
    """Render a loaded trial's model along `camera_paths` into `out` (`on_view(done, total)` after each view; with
    `legibility`, each view's doc_cer where it can be had); returns the summary (render.json)."""
    from nerftune.nerf.render import crop_box, dataset_to_model, poses_to_model, render_path

    view = json.loads((view_dir / "transforms.json").read_text())
    info = camera_paths["nerftune"]
    transform, scale = dataset_to_model(trainer)
    poses = np.array([np.array(c["camera_to_world"], float).reshape(4, 4) for c in camera_paths["camera_path"]])
    model_paths = {
        **camera_paths,
        "camera_path": [
            {**c, "camera_to_world": p.reshape(-1).tolist()}
            for c, p in zip(camera_paths["camera_path"], poses_to_model(poses, transform, scale))
        ],
    }
    model_paths["nerftune"] = {**info, "coordinates": "model"}
    crop_data = view.get("nerftune", {}).get("crop") or info.get("crop")
    crop = crop_box(Crop.from_json(crop_data), transform, scale) if use_crop and crop_data else None
    images, seconds = render_path(trainer, model_paths, crop, on_view)

    out.mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    (out / "camera_path.json").write_text(json.dumps(model_paths, indent=1))
    rows = _score_views(poses, view, info)
    rates = novel_error_rates(view, view_dir, camera_paths, poses, images) if legibility else [None] * len(images)
    names = _segment_names(info["segments"], len(poses))
    from PIL import Image

    with open(out / "views.csv", "w", newline="") as handle:
        table = csv.DictWriter(handle, fieldnames=VIEW_COLUMNS)
        table.writeheader()
        for index, (image, row, doc_cer) in enumerate(zip(images, rows, rates)):
            file_name = f"images/{names[index][0]}_{names[index][1]:03d}.png"
            Image.fromarray(image).save(out / file_name)
            table.writerow(
                {
                    "view": index,
                    "segment": names[index][0],
                    "image": file_name,
                    "render_s": round(seconds[index], 4),
                    "doc_cer": "" if doc_cer is None else round(doc_cer, 4),
                    **row,
                }
            )
    if video:
        write_video(images, out / "path.mp4", len(images) / float(camera_paths.get("seconds") or len(images) / 10))
    summary = {
        "views": len(images),
        "fps": len(images) / max(sum(seconds), 1e-9),
        "step": trainer.step,
        "crop": crop is not None,
        "size": [int(camera_paths["render_width"]), int(camera_paths["render_height"])],
        **legibility_summary(rates),
    }
    (out / "render.json").write_text(json.dumps(summary, indent=2))
    return summary


def legibility_summary(rates: list[float | None]) -> dict[str, Any]:
    """render.json's `doc_cer` (the mean over the views that show the document large enough to read, None where
    none does) and `doc_cer_views` (how many)."""
    read = [rate for rate in rates if rate is not None]
    return {"doc_cer": float(np.mean(read)) if read else None, "doc_cer_views": len(read)}


def render_metrics(summary: dict[str, Any], suffix: str = "") -> dict[str, float | None]:
    """What a render adds to its trial's MLflow run, to compare and sort runs by: the render's speed and the novel
    views' mean doc_cer (None, and left out, where no view shows the document large enough to read). A render by
    hand names its own (`suffix`: `.<paths name>`), so that it never replaces the values of the sweep's renders."""
    values = (summary["fps"], summary["doc_cer"], summary["doc_cer_views"])
    return {f"{key}{suffix}": value for key, value in zip(NOVEL_VIEWS, values)}


def _score_views(poses: np.ndarray, view: dict, info: dict) -> list[dict[str, Any]]:
    """Novelty of every view against the trial's own training frames (its subset, not the whole dataset)."""
    by_name = {f["file_path"]: f for f in view["frames"]}
    train_names = view["train_filenames"]
    train = np.stack([pose_matrix(by_name[name]) for name in train_names])
    frame = paths.Frame(
        np.array(info["point_of_interest"]),
        np.array(info["document_normal"]),
        np.array(info["document_up"]),
        float(info["unit"]),
    )
    rows = []
    for pose in poses:
        n = paths.novelty(pose, train, frame)
        rows.append(
            {
                "angle_deg": round(n.angle_deg, 3),
                "distance": round(n.distance, 4),
                "novelty": round(n.score, 4),
                "label": n.label,
                "nearest_train_frame": Path(train_names[n.nearest]).name,
            }
        )
    return rows


def _segment_names(segments: list[dict], total: int) -> list[tuple[str, int]]:
    names = [("view", i) for i in range(total)]
    for segment in segments:
        for k in range(segment["count"]):
            names[segment["first"] + k] = (segment["name"], k)
    return names


def write_video(images: list[np.ndarray], path: Path, fps: float) -> None:
    """An H.264 mp4 (even frame size, as yuv420p needs)."""
    import av
    from fractions import Fraction

    height, width = (d - d % 2 for d in images[0].shape[:2])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in images:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
