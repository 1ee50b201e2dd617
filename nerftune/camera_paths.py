"""`nerftune paths`: camera paths around the document, as a paths file that `nerftune render` and sweeps read.

nerftune paths data/card --radii 0.2,0.4 --distances 1.0,1.6 --views 9 --out card_paths.json

A paths file is nerfstudio's camera-path JSON in the dataset's frame, with a `nerftune` block naming its segments
(each circle, then the training trajectory) and the document. The geometry is `paths` (numpy only).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from nerftune import paths
from nerftune.cli import described
from nerftune.data.dataset import Dataset, load_dataset
from nerftune.data.poi import recorded_or_look_at
from nerftune.errors import InputError, output_place


def paths_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nerftune paths", description=described(__doc__))
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
        output_place(args.out)
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
    intrinsics = dataset.main_camera  # with several lenses: the lens most frames were taken with
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
