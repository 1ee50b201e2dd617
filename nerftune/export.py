"""`nerftune export TRIAL --nerfstudio | --pointcloud`: a trial for nerfstudio's own tools, or its point cloud.

nerftune export sweeps/demo/train_trial_xxx --nerfstudio        # its latest checkpoint, into TRIAL/nerfstudio/
nerftune export sweeps/demo/train_trial_xxx/checkpoint_000001 --nerfstudio --out exports/

Then `ns-viewer --load-config CONFIG`, `ns-render camera-path --load-config CONFIG ...`, `ns-eval --load-config CONFIG
--output-path eval.json` and `ns-export pointcloud --load-config CONFIG --output-dir DIR` work on it.

nerftune export sweeps/demo/train_trial_xxx --pointcloud [--no-crop]  # TRIAL/export/pointcloud/point_cloud.ply
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from nerftune.errors import InputError
from nerftune.trials import locate, read_recipe

NERFSTUDIO_FOLDER = "nerfstudio"  # in the trial's folder, where `--out` is not given
POINT_CLOUD_FOLDER = "export/pointcloud"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nerftune export", description=__doc__.splitlines()[0])
    parser.add_argument("trial", type=Path, help="a trial folder (its latest checkpoint), a checkpoint folder or file")
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--nerfstudio", action="store_true", help="write a nerfstudio output folder")
    kind.add_argument("--pointcloud", action="store_true", help="write a point cloud (PLY) by nerfstudio's exporter")
    parser.add_argument("--no-crop", action="store_true", help="keep what lies in front of the document too")
    parser.add_argument("--num-points", type=int, default=1_000_000, help="points to sample (ns-export's default)")
    parser.add_argument("--out", type=Path, help="where (default: TRIAL/nerfstudio, or TRIAL/export/pointcloud)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export")
    args = parser.parse_args(argv)
    try:
        trial_dir, checkpoint = locate(args.trial)
        recipe = read_recipe(trial_dir)
        if args.pointcloud:
            return _point_cloud(recipe, checkpoint, args.out or trial_dir / POINT_CLOUD_FOLDER, args)
        from nerftune.nerf.nerfstudio_output import write_nerfstudio_output

        config = write_nerfstudio_output(recipe, checkpoint, args.out or trial_dir / NERFSTUDIO_FOLDER, args.overwrite)
    except InputError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        return 2
    print(f"nerfstudio output: {config}")
    for command in (
        f"ns-viewer --load-config {config}",
        f"ns-eval --load-config {config} --output-path {config.parent / 'eval.json'}",
        f"ns-render camera-path --load-config {config} --camera-path-filename PATH.json --output-path render.mp4",
        f"ns-export pointcloud --load-config {config} --output-dir {config.parent / 'export'}",
    ):
        print(f"  {command}")
    return 0


def _point_cloud(recipe, checkpoint: Path, out: Path, args) -> int:
    if out.exists() and not args.overwrite:
        raise InputError(out, "--out", "exists already", "give another --out, or add --overwrite")
    if args.num_points < 1:
        raise InputError("command line", "--num-points", "must be at least 1", "e.g. --num-points 100000")
    import tempfile

    from nerftune.nerf.point_cloud import export_point_cloud
    from nerftune.nerf.render import load_trained

    with tempfile.TemporaryDirectory() as work:
        trainer = load_trained(recipe, checkpoint, Path(work))
        summary = export_point_cloud(trainer, Path(recipe.view_dir), out, not args.no_crop, args.num_points)
    crop = "cropped to the document" if summary["cropped"] else "uncropped"
    print(f"{out / summary['file']}: {summary['points']} points, {crop}, dataset frame, {summary['seconds']:.1f} s")
    return 0
