"""`nerftune export TRIAL --nerfstudio | --pointcloud | --mesh [poisson|tsdf|marching-cubes]`: a trial for
nerfstudio's own tools, or its geometry by nerfstudio's exporters.

nerftune export sweeps/demo/train_trial_xxx --nerfstudio        # its latest checkpoint, into TRIAL/nerfstudio/
nerftune export sweeps/demo/train_trial_xxx/checkpoint_000001 --nerfstudio --out exports/

Then `ns-viewer --load-config CONFIG`, `ns-render camera-path --load-config CONFIG ...`, `ns-eval --load-config CONFIG
--output-path eval.json` and `ns-export pointcloud --load-config CONFIG --output-dir DIR` work on it.

nerftune export sweeps/demo/train_trial_xxx --pointcloud [--no-crop]   # TRIAL/export/pointcloud/point_cloud.ply
nerftune export sweeps/demo/train_trial_xxx --mesh tsdf [--no-crop]    # TRIAL/export/tsdf/tsdf_mesh.ply, mesh.obj

A point cloud or mesh is cut to the data's document crop unless --no-crop, written in the dataset's frame with an
`export.json` (counts, seconds), and logged to the trial's MLflow run under `exports/`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import ContextManager, Sequence

from nerftune.cli import described
from nerftune.errors import InputError, output_place
from nerftune.quiet import quiet_output
from nerftune.trials import TrialRecipe, locate, read_recipe

NERFSTUDIO_FOLDER = "nerfstudio"  # in the trial's folder, where `--out` is not given
EXPORT_FOLDER = "export"  # in the trial's folder: export/pointcloud, export/tsdf, ...
SUMMARY_FILE = "export.json"
EXPORT_LOG = "export.log"  # in the trial's folder: what nerfstudio printed while the trial loaded
MESH_METHODS = ("poisson", "tsdf", "marching-cubes")  # ns-export's; `nerf/exporters.py` makes the first two


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nerftune export", description=described(__doc__))
    parser.add_argument("trial", type=Path, help="a trial folder (its latest checkpoint), a checkpoint folder or file")
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--nerfstudio", action="store_true", help="write a nerfstudio output folder")
    kind.add_argument("--pointcloud", action="store_true", help="write a point cloud (PLY) by nerfstudio's exporter")
    kind.add_argument("--mesh", choices=MESH_METHODS, help="write a mesh (PLY, and OBJ with texture) by this method")
    parser.add_argument("--no-crop", action="store_true", help="keep what lies in front of the document too")
    parser.add_argument("--num-points", type=int, default=1_000_000, help="points to sample (ns-export's default)")
    parser.add_argument("--texture-size", type=int, default=2048, help="texture pixels per side; 0: no texture")
    parser.add_argument("--out", type=Path, help="where (default: TRIAL/nerfstudio, or TRIAL/export/KIND)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export")
    parser.add_argument("--tracking-uri", help="the MLflow server the sweep logged to (default: the sweep's own)")
    parser.add_argument("--verbose", action="store_true", help="show all nerfstudio says (else: TRIAL/export.log)")
    args = parser.parse_args(argv)
    try:
        trial_dir, checkpoint = locate(args.trial)
        recipe = read_recipe(trial_dir)
        kind = NERFSTUDIO_FOLDER if args.nerfstudio else f"{EXPORT_FOLDER}/{args.mesh or 'pointcloud'}"
        out = args.out or trial_dir / kind
        output_place(out, folder=True)
        if not args.nerfstudio:
            _check_geometry_args(out, args)
        # nerfstudio speaks as the trial loads (the exporters' progress bars stay on the terminal)
        loading = quiet_output(trial_dir / EXPORT_LOG, args.verbose)
        if args.nerfstudio:
            with loading:
                lines = _nerfstudio(recipe, checkpoint, out, args.overwrite)
        else:
            from nerftune.tracking import log_to_trial_run

            lines = _geometry(recipe, checkpoint, out, args, loading)
            lines.append(log_to_trial_run(trial_dir, out, f"exports/{out.name}", args.tracking_uri))
    except InputError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    if not args.verbose:
        print(f"nerfstudio's own output while the trial loaded: {trial_dir / EXPORT_LOG}")
    return 0


def _nerfstudio(recipe: TrialRecipe, checkpoint: Path, out: Path, overwrite: bool) -> list[str]:
    """Write the nerfstudio output folder; returns what to say (where it is, how nerfstudio's tools load it)."""
    from nerftune.nerf.nerfstudio_output import write_nerfstudio_output

    config = write_nerfstudio_output(recipe, checkpoint, out, overwrite)
    commands = (
        f"ns-viewer --load-config {config}",
        f"ns-eval --load-config {config} --output-path {config.parent / 'eval.json'}",
        f"ns-render camera-path --load-config {config} --camera-path-filename PATH.json --output-path render.mp4",
        f"ns-export pointcloud --load-config {config} --output-dir {config.parent / 'export'}",
    )
    return [f"nerfstudio output: {config}", *(f"  {command}" for command in commands)]


def _check_geometry_args(out: Path, args: argparse.Namespace) -> None:
    if out.exists() and not args.overwrite:
        raise InputError(out, "--out", "exists already", "give another --out, or add --overwrite")
    if args.num_points < 1:
        raise InputError("command line", "--num-points", "must be at least 1", "e.g. --num-points 100000")
    if args.texture_size < 0:
        raise InputError("command line", "--texture-size", "must be 0 (no texture) or more", "e.g. 1024")


def _geometry(
    recipe: TrialRecipe, checkpoint: Path, out: Path, args: argparse.Namespace, loading: ContextManager
) -> list[str]:
    """Load the checkpoint (within `loading`) and export its point cloud or mesh into `out`, with export.json;
    returns what to say."""
    from nerftune.nerf.exporters import export_mesh, export_point_cloud
    from nerftune.nerf.render import load_trained

    view, crop = Path(recipe.view_dir), not args.no_crop
    with tempfile.TemporaryDirectory() as work:
        with loading:
            trainer = load_trained(recipe, checkpoint, Path(work), scores=False)
        if args.pointcloud:
            summary = export_point_cloud(trainer, view, out, crop, args.num_points)
        else:
            summary = export_mesh(trainer, view, out, args.mesh, crop, args.num_points, args.texture_size)
    summary.update(trial_id=recipe.trial_id, checkpoint=str(checkpoint))
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    counts = f"{summary['points']} points" if "points" in summary else f"{summary['vertices']} vertices"
    cropped = "cropped to the document" if summary["cropped"] else "uncropped"
    return [f"{out / summary['files'][0]}: {counts}, {cropped}, dataset frame, {summary['seconds']:.1f} s"]
