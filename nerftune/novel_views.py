"""`nerftune paths` and `nerftune render`: camera paths around the document, and a trial's renders along them.

nerftune paths data/card --radii 0.2,0.4 --distances 1.0,1.6 --views 9 --out card_paths.json
nerftune render sweeps/frames/train_trial_xxx --paths card_paths.json --video

A paths file is nerfstudio's camera-path JSON in the dataset's frame, with a `nerftune` block naming its segments
(each circle, then the training trajectory) and the document. `render` moves it into the trial's model frame
(written as camera_path.json, which `ns-render camera-path` reads with the trial's config), renders every view,
scores how novel each view is for that trial's training frames, and writes images/, views.csv, render.json (and
path.mp4 with --video).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from nerftune import paths
from nerftune.data.dataset import Dataset, load_dataset, pose_matrix
from nerftune.data.poi import Crop, recorded_or_look_at
from nerftune.errors import InputError
from nerftune.spec import SCENE
from nerftune.trials import locate, read_recipe, trial_folders

VIEW_COLUMNS = (
    "view",
    "segment",
    "image",
    "angle_deg",
    "distance",
    "novelty",
    "label",
    "nearest_train_frame",
    "render_s",
)


# ---- nerftune paths ---------------------------------------------------------------------------------------------


def paths_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nerftune paths", description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a dataset folder (transforms.json)")
    parser.add_argument("--radii", default="0.2,0.4", help="circle radii, relative to the cameras' distance")
    parser.add_argument("--distances", default="1.0,1.6", help="heights above the document, relative likewise")
    parser.add_argument("--views", type=int, default=9, help="views per circle (and along the trajectory)")
    parser.add_argument("--poi", default="auto", help="auto (from prepare, or where the cameras look) or x,y,z")
    parser.add_argument("--out", type=Path, default=Path("camera_paths.json"), help="the paths file (and a .png)")
    args = parser.parse_args(argv)
    try:
        radii, distances = _numbers(args.radii, "--radii"), _numbers(args.distances, "--distances")
        if args.views < 1:
            raise InputError("command line", "--views", "must be at least 1", "e.g. --views 9")
        dataset = load_dataset(args.data, check_images=False)
        camera_paths = make_paths(dataset, radii, distances, args.views, args.poi)
    except InputError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(camera_paths, indent=1))
    from nerftune.path_plot import plot_paths

    plot_paths(camera_paths, dataset.poses, args.out.with_suffix(".png"))
    segments = camera_paths["nerftune"]["segments"]
    print(
        f"{args.out}: {len(camera_paths['camera_path'])} views in {len(segments)} paths; "
        f"plot {args.out.with_suffix('.png')}"
    )
    return 0


def make_paths(dataset: Dataset, radii: list[float], distances: list[float], views: int, poi: str = "auto") -> dict:
    """The paths file's content: every circle and the interpolated training trajectory, in the dataset's frame."""
    transforms, poses = dataset.transforms, dataset.poses
    document = transforms.get("nerftune", {})
    point = _point_of_interest(poi, document, poses)
    frame = paths.document_frame(point, document.get("document_normal") or None, poses)
    segments = paths.circles(frame, radii, distances, views) + [
        ("trajectory", paths.interpolate_trajectory(poses, views))
    ]
    intrinsics = {**dataset.frames[0], **transforms}  # per-frame intrinsics where the file has no shared ones
    width, height = int(intrinsics["w"]), int(intrinsics["h"])
    fov_y = math.degrees(2 * math.atan(height / (2 * float(intrinsics["fl_y"]))))
    content = paths.camera_path_json(np.concatenate([p for _, p in segments]), fov_y, width, height)
    listed, first = [], 0
    for name, poses_of_segment in segments:
        listed.append({"name": name, "first": first, "count": len(poses_of_segment)})
        first += len(poses_of_segment)
    content["nerftune"] = {
        "coordinates": "dataset",
        "data": str(dataset.root.resolve()),
        "point_of_interest": frame.point_of_interest.tolist(),
        "document_normal": frame.normal.tolist(),
        "document_up": frame.up.tolist(),
        "unit": frame.unit,
        "segments": listed,
        **({"crop": document["crop"]} if "crop" in document else {}),
        **({"document_size": document["document_size"]} if "document_size" in document else {}),
    }
    return content


def _point_of_interest(poi: str, document: dict, poses: np.ndarray) -> np.ndarray:
    if poi != "auto":
        values = _numbers(poi, "--poi")
        if len(values) != 3:
            raise InputError("command line", "--poi", f"needs 3 numbers, got {len(values)}", "e.g. --poi 0,0,0.01")
        return np.array(values)
    return recorded_or_look_at(document, poses)


def _numbers(text: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(
            "command line", flag, f"{text!r} is not a comma-separated list of numbers", "e.g. 0.2,0.4"
        ) from None
    if not values or not all(map(math.isfinite, values)):
        raise InputError("command line", flag, f"{text!r} gives no finite numbers", "e.g. 0.2,0.4")
    return values


# ---- nerftune render --------------------------------------------------------------------------------------------


def render_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nerftune render", description="render a trial along camera paths")
    parser.add_argument("trial", type=Path, help="a trial folder (its latest checkpoint), checkpoint folder or file")
    parser.add_argument("--paths", type=Path, required=True, help="a paths file from `nerftune paths`")
    parser.add_argument("--out", type=Path, help="output folder (default: TRIAL/renders/PATHS_NAME)")
    parser.add_argument("--video", action="store_true", help="also write path.mp4")
    parser.add_argument("--no-crop", action="store_true", help="render what lies in front of the document too")
    args = parser.parse_args(argv)
    try:
        trial_dir, checkpoint = locate(args.trial)
        read_recipe(trial_dir)
        camera_paths = read_paths(args.paths)
    except InputError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        return 2
    out = args.out or trial_dir / "renders" / args.paths.stem
    summary = render_trial(trial_dir, checkpoint, camera_paths, out, args.video, not args.no_crop)
    print(
        f"{out}: {summary['views']} views at {summary['fps']:.2f} fps (step {summary['step']}), "
        f"crop {'on' if summary['crop'] else 'off'}"
    )
    return 0


def render_trial(trial_dir: Path, checkpoint: Path, camera_paths: dict, out: Path, video: bool, crop: bool) -> dict:
    """Load a trial's checkpoint with its own recipe and view, render the paths into `out`; returns render.json."""
    from nerftune.nerf.render import load_trained

    recipe = read_recipe(trial_dir)
    with tempfile.TemporaryDirectory() as work:
        trainer = load_trained(recipe, checkpoint, Path(work))
        summary = render_views(trainer, Path(recipe.view_dir), camera_paths, out, video, crop)
    summary.update(trial_id=recipe.trial_id, checkpoint=str(checkpoint))
    (out / "render.json").write_text(json.dumps(summary, indent=2))  # with where it came from
    return summary


def render_best_trials(prepared, table, target) -> Iterator[str]:
    """After a sweep: render the best K completed trials (by the sweep's metric) from their last checkpoints, in
    this process, into their folders and MLflow runs; yields a line per trial as it is done."""
    from nerftune.outcomes import StopReason
    from nerftune.tracking import log_trial_folder

    spec, name = prepared.spec, prepared.camera_paths_name
    best_column = f"best_{spec.metric.name}"
    done = table[(table.stop_reason == StopReason.COMPLETED.value) & table[best_column].notna()]
    ranked = done.sort_values(best_column, ascending=spec.metric.mode == "min")
    # the best K of each scene of a study, along that scene's own camera paths
    grouped = ranked.groupby(SCENE, sort=False) if SCENE in ranked else None
    best = grouped.head(spec.render.best_k) if grouped is not None else ranked.head(spec.render.best_k)
    folders = {read_recipe(folder).trial_id: folder for folder in trial_folders(prepared.experiment_dir)}
    for row in best.to_dict("records"):
        trial_id = row["trial_id"]
        folder, checkpoint = locate(folders[trial_id])
        out = folder / "renders" / name
        camera_paths = prepared.scenes[row.get(SCENE, next(iter(prepared.scenes)))].camera_paths
        summary = render_trial(folder, checkpoint, camera_paths, out, spec.render.video, spec.render.crop)
        logged = target and log_trial_folder(target, trial_id, out, f"renders/{name}")
        yield f"rendered trial {trial_id}: {summary['views']} views at {summary['fps']:.2f} fps -> {out}" + (
            " (and MLflow)" if logged else ""
        )


def read_paths(path: Path, field: str = "--paths") -> dict:
    hint = "write one with `nerftune paths DATA`"
    try:
        content = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(path, field, "does not exist", hint) from None
    except json.JSONDecodeError as error:
        raise InputError(path, field, f"unreadable JSON: {error}", hint) from None
    if not isinstance(content, dict) or not content.get("camera_path") or "nerftune" not in content:
        raise InputError(path, field, "holds no nerftune camera paths", hint)
    return content


def render_views(trainer, view_dir: Path, camera_paths: dict, out: Path, video: bool, use_crop: bool) -> dict[str, Any]:
    """Render a loaded trial's model along `camera_paths` into `out`; returns the summary (render.json)."""
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
    images, seconds = render_path(trainer, model_paths, crop)

    out.mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    (out / "camera_path.json").write_text(json.dumps(model_paths, indent=1))
    rows = _score_views(poses, view, info)
    names = _segment_names(info["segments"], len(poses))
    from PIL import Image

    with open(out / "views.csv", "w", newline="") as handle:
        table = csv.DictWriter(handle, fieldnames=VIEW_COLUMNS)
        table.writeheader()
        for index, (image, row) in enumerate(zip(images, rows)):
            file_name = f"images/{names[index][0]}_{names[index][1]:03d}.png"
            Image.fromarray(image).save(out / file_name)
            table.writerow(
                {
                    "view": index,
                    "segment": names[index][0],
                    "image": file_name,
                    "render_s": round(seconds[index], 4),
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
    }
    (out / "render.json").write_text(json.dumps(summary, indent=2))
    return summary


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
