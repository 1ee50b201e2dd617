"""`nerftune export TRIAL --nerfstudio`: a trial as a nerfstudio output folder, for nerfstudio's own tools.

nerftune export sweeps/demo/train_trial_xxx --nerfstudio        # its latest checkpoint, into TRIAL/nerfstudio/
nerftune export sweeps/demo/train_trial_xxx/checkpoint_000001 --nerfstudio --out exports/

Then `ns-viewer --load-config CONFIG`, `ns-render camera-path --load-config CONFIG ...`, `ns-eval --load-config CONFIG
--output-path eval.json` and `ns-export pointcloud --load-config CONFIG --output-dir DIR` work on it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from nerftune.errors import InputError
from nerftune.trials import locate, read_recipe

NERFSTUDIO_FOLDER = "nerfstudio"  # in the trial's folder, where `--out` is not given


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nerftune export", description=__doc__.splitlines()[0])
    parser.add_argument("trial", type=Path, help="a trial folder (its latest checkpoint), a checkpoint folder or file")
    parser.add_argument("--nerfstudio", action="store_true", required=True, help="write a nerfstudio output folder")
    parser.add_argument("--out", type=Path, help="where (default: TRIAL/nerfstudio)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export of the same checkpoint")
    args = parser.parse_args(argv)
    try:
        trial_dir, checkpoint = locate(args.trial)
        recipe = read_recipe(trial_dir)
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
