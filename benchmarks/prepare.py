"""Seconds per stage of `nerftune prepare`, sequential vs exhaustive matcher, measured in one run.

Renders 60 frames at 640x480 of the embedded ID-card scene (the time to render is not counted), then prepares the
frames folder twice with real pycolmap and prints seconds per stage and the exhaustive / sequential ratio. Usage:

    python benchmarks/prepare.py [--frames 60] [--width 640] [--height 480]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from nerftune.data.prepare import REPORT_FILE
from nerftune.data.prepare import main as prepare_main
from nerftune.data.synthetic import SceneOptions, write_scene

STAGES = ("extract", "features", "matching", "mapping", "document")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        options = SceneOptions(frames=args.frames, width=args.width, height=args.height)
        scene = write_scene(Path(tmp) / options.name(), options)
        reports = {}
        for matcher in ("sequential", "exhaustive"):
            out = Path(tmp) / matcher
            assert prepare_main([str(scene / "images"), "--out", str(out), "--matcher", matcher]) == 0
            reports[matcher] = json.loads((out / REPORT_FILE).read_text())
    print(f"\nnerftune prepare, {args.frames} frames at {args.width}x{args.height} (synthetic ID-card scene)")
    print(f"{'stage':<12}" + "".join(f"{m:>13}" for m in reports) + f"{'ratio':>9}")
    totals = {m: sum(r["seconds"][s] for s in STAGES) for m, r in reports.items()}
    for stage in STAGES:
        seq, exh = (reports[m]["seconds"][stage] for m in ("sequential", "exhaustive"))
        print(f"{stage:<12}{seq:>12.1f}s{exh:>12.1f}s{exh / max(seq, 1e-9):>9.2f}")
    print(
        f"{'total':<12}{totals['sequential']:>12.1f}s{totals['exhaustive']:>12.1f}s"
        f"{totals['exhaustive'] / totals['sequential']:>9.2f}"
    )
    for matcher, report in reports.items():
        print(
            f"{matcher}: {report['frames_registered']}/{report['frames_in']} registered, {report['points']} points, "
            f"reprojection error {report['mean_reprojection_error_px']:.2f} px"
        )


if __name__ == "__main__":
    main()
