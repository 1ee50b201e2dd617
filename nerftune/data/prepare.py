"""`nerftune prepare INPUT --out DIR`: a phone video or a folder of frames -> a nerfstudio dataset, with pycolmap.

nerftune prepare capture.mp4 --out data/card --frames 120 --max-size 960   # the sharpest frame near each of 120
nerftune prepare frames/ --out data/card --masks masks/ --matcher exhaustive
nerftune prepare capture.mp4 --out data/card --focal-mm 26 --mapper auto

The folder gets images/ (and masks/), transforms.json (nerfstudio's convention, with the document's point of
interest, normal and crop under `nerftune`), sparse_pc.ply, prepare_report.json and colmap/ (database and model).
It is built next to DIR and moved into place only when complete: a failed run leaves DIR as it was.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from nerftune.cli import described
from nerftune.data.capture import Selection, read_frames
from nerftune.data.dataset import PREPARE_REPORT as REPORT_FILE
from nerftune.data.focal import from_arguments
from nerftune.data.lenses import Lens, capture_lenses, lens_report, sfm_lenses
from nerftune.data.photos import folder_photos
from nerftune.data.poi import find_document
from nerftune.data.prepare_files import PLY_FILE, write_frames, write_transforms
from nerftune.data.prepare_summary import summary_lines
from nerftune.data.sfm import CAMERA_MODELS, MAPPERS, MATCHERS
from nerftune.data.sfm_choice import Outcome, SfmOptions, reconstruct
from nerftune.data.video import is_video
from nerftune.errors import InputError, output_place

# nerfstudio's own dataparser trains a larger capture downscaled to this (its MAX_AUTO_RESOLUTION); nerftune's trials
# take a dataset at its size, so frames are written at most this large: a 4K phone video would otherwise make every
# evaluation render 8 million rays an image, and SfM take several times as long
DEFAULT_MAX_SIZE = 1600
VIDEO_FRAMES = 300  # frames kept from a video by default: nerfstudio's ns-process-data keeps as many


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    try:
        report = prepare(args)
    except InputError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(args.out, report)))
    return 0


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nerftune prepare", description=described(__doc__))
    parser.add_argument(
        "input",
        type=Path,
        help="a video file (mp4, mov, ...; HDR is tone-mapped) or a folder of photos (JPEG, PNG, HEIC, ...)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the dataset folder to write")
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument(
        "--frames",
        type=int,
        help=f"keep N frames, spread evenly over the capture (a video: {VIDEO_FRAMES} by default, as nerfstudio's "
        "ns-process-data; a folder: all)",
    )
    pick.add_argument("--fps", type=float, help="keep F frames per second of video")
    parser.add_argument(
        "--pick",
        choices=("sharpest", "even"),
        default="sharpest",
        help="where frames are left out: sharpest (default): each evenly spaced frame, or a neighbour at least 20 %% "
        "sharper (less blurred); even: exactly the evenly spaced frames",
    )
    parser.add_argument("--masks", type=Path, help="mask images: white = use, black = ignore (COLMAP's convention)")
    parser.add_argument("--matcher", choices=MATCHERS, help="default: sequential for a video, exhaustive for a folder")
    parser.add_argument(
        "--camera-model",
        choices=("auto", *CAMERA_MODELS),
        default="auto",
        help="auto (default): SIMPLE_RADIAL, or OPENCV where it registers as many frames with a lower error",
    )
    focal = parser.add_mutually_exclusive_group()
    focal.add_argument("--focal-mm", type=float, help="known focal length, 35 mm-equivalent millimetres (a prior)")
    focal.add_argument("--fov", type=float, help="known horizontal field of view in degrees (a prior)")
    focal.add_argument("--camera", type=Path, help="known intrinsics: a JSON file with fl_x and w (a prior)")
    parser.add_argument(
        "--mapper",
        choices=("auto", *MAPPERS),
        default="auto",
        help="auto (default): incremental, and global too where a focal prior exists (kept if it registers more "
        "frames and agrees); global needs a prior",
    )
    parser.add_argument(
        "--recovery-seconds", type=float, default=300, help="time bound of the fixes tried when too few register"
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=DEFAULT_MAX_SIZE,
        help=f"downscale frames so that their longest side is at most PX ({DEFAULT_MAX_SIZE}, as nerfstudio trains a "
        "larger capture; 0: keep the capture's size)",
    )
    parser.add_argument(
        "--min-registered", type=float, default=0.5, help="fail below this fraction of frames registered (0.5)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace) -> dict:
    """Run every stage into a staging folder, then move it to `args.out`; returns the report."""
    lenses = _check_args(args)
    staging = args.out.with_name(f".{args.out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        report = _build(args, staging, lenses)
        if args.out.exists():
            shutil.rmtree(args.out)  # --overwrite was given (checked above)
        staging.replace(args.out)
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_args(args: argparse.Namespace) -> list[Lens]:
    """Refuse bad options before any work; returns the capture's lenses with their focal priors (given, or from the
    capture's metadata)."""
    if args.frames is not None and args.frames < 2:
        raise InputError("command line", "--frames", f"is {args.frames}; at least 2 frames are needed", "raise it")
    if args.fps is not None and args.fps <= 0:
        raise InputError("command line", "--fps", f"is {args.fps}; it must be positive", "e.g. --fps 2")
    if args.max_size < 0 or 0 < args.max_size < 32:
        raise InputError(
            "command line", "--max-size", f"is {args.max_size} px; too small for features", "use >= 320, or 0"
        )
    if not 0 < args.min_registered <= 1:
        raise InputError("command line", "--min-registered", "must be in (0, 1]", "e.g. 0.5")
    if args.masks is not None and not args.masks.is_dir():
        raise InputError(args.masks, "--masks", "is not a folder", "give the folder of mask images")
    if args.recovery_seconds < 0:
        raise InputError("command line", "--recovery-seconds", "is negative", "e.g. 300, or 0 for no recovery")
    output_place(args.out, folder=True)
    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        raise InputError(args.out, "--out", "exists and is not empty", "choose another folder or add --overwrite")
    lenses = capture_lenses(args.input, _photos(args.input))
    given = from_arguments(args.focal_mm, args.fov, args.camera)
    if given is not None and len(lenses) > 1:
        raise InputError(
            args.input,
            given.source.split()[0],
            f"gives one focal length, and the photos were taken with {len(lenses)} lenses (EXIF, 35 mm-equivalent: "
            f"{'; '.join(lens.describe() for lens in lenses)})",
            "leave it out: each lens's EXIF focal length is its prior",
        )
    lenses = [Lens(given)] if given is not None else lenses
    if args.mapper == "global" and not all(lens.prior for lens in lenses):
        raise InputError(
            "command line",
            "--mapper global",
            "global mapping places cameras reliably only with a known focal length, and none was given or found "
            "in the capture's metadata" + (" for every lens" if len(lenses) > 1 else ""),
            "add --focal-mm, --fov or --camera, or use --mapper auto",
        )
    return lenses


def selection_for(args: argparse.Namespace) -> Selection:
    """The frames to keep: as asked, or a video's `VIDEO_FRAMES` (a minute of 30 fps video is 1,800 frames: hours
    of SfM, and a pool no study needs), or a folder's every image."""
    count = args.frames
    if count is None and args.fps is None and is_video(args.input):
        count = VIDEO_FRAMES
    return Selection(count, args.fps, args.max_size, sharpest=args.pick == "sharpest")


def _photos(source: Path) -> list[Path]:
    """A folder's photos, in name order; none for a video."""
    return folder_photos(source) if source.is_dir() else []


def _build(args: argparse.Namespace, out: Path, lenses: list[Lens]) -> dict:
    seconds = {}
    start = time.perf_counter()
    capture = read_frames(args.input, selection_for(args), args.masks)
    for conversion in (capture.orientation, capture.colour):
        if conversion != "as stored":
            print(f"frames: {conversion}", file=sys.stderr)
    sources = write_frames(capture.frames, capture.count, out, args.input)
    names = list(sources)
    if len(names) < 2:  # a video whose container promised more frames than it decodes
        raise InputError(
            args.input, "INPUT", f"decodes to {len(names)} frame(s); at least 2 are needed", "re-export it"
        )
    seconds["extract"] = time.perf_counter() - start
    if capture.picking is not None:
        print(f"kept {capture.picked()}", file=sys.stderr)

    matcher = args.matcher or ("sequential" if is_video(args.input) else "exhaustive")
    colmap_masks = out / "colmap" / "masks" if args.masks else None
    with Image.open(out / "images" / names[0]) as first:
        size = first.size
    if len(lenses) > 1:
        print(f"lenses: {'; '.join(lens.describe() for lens in lenses)} (EXIF): one camera each", file=sys.stderr)
    taken = sfm_lenses(lenses, sources, size)
    options = SfmOptions(
        matcher,
        args.camera_model,
        args.mapper,
        taken,
        min_registered=max(2, math.ceil(args.min_registered * len(names))),
        recovery_seconds=args.recovery_seconds,
    )
    outcome = reconstruct(out / "images", names, out / "colmap", options, colmap_masks)
    model = outcome.reconstruction
    seconds.update(outcome.seconds)
    _check_registered(outcome, options, args.input, sources)

    start = time.perf_counter()
    poses = np.stack([model.poses[name] for name in model.registered])
    try:
        document = find_document(model.points, poses, masked=args.masks is not None).to_json()
    except ValueError as error:
        print(f"warning: no point of interest: {error}", file=sys.stderr)
        document = {}
    seconds["document"] = time.perf_counter() - start

    model.write_ply(out / PLY_FILE)
    write_transforms(out, model, document, masked=args.masks is not None, source=args.input)
    report = {
        "input": str(args.input.resolve()),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "input"},
        "matcher": matcher,
        "camera_model": model.camera_model,
        "camera_model_attempts": outcome.camera_model_attempts,
        "focal_prior": lenses[0].prior.to_json(*size) if len(lenses) == 1 and lenses[0].prior else None,
        "lenses": lens_report(lenses, taken, size, model),
        "mapper": model.mapper,
        "mapper_attempts": outcome.mapper_attempts,
        "recovery": outcome.recovery,
        "frames_in": len(names),
        "orientation": capture.orientation,
        "colour": capture.colour,
        "picked": capture.picked(),
        "frames_registered": len(model.registered),
        "registered": model.registered,
        "unregistered": model.unregistered,
        "sources": sources,
        "mean_reprojection_error_px": model.mean_reprojection_error,
        "points": len(model.points),
        "document": document,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report


def _check_registered(outcome: Outcome, options: SfmOptions, source: Path, sources: dict[str, str]) -> None:
    model = outcome.reconstruction
    registered = len(model.registered)
    if registered >= options.min_registered:
        return
    listed = ", ".join(sources[name] for name in model.registered) or "none"
    raise InputError(
        source,
        "reconstruction",
        f"registered {registered} of {len(model.image_names)} frames ({listed}); tried: {outcome.tried()}",
        "use more frames (--frames/--fps), a known focal length (--focal-mm/--fov), or a capture with more "
        "overlap and texture",
    )
