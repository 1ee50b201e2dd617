"""Seconds per stage of `nerftune prepare`, sequential vs exhaustive matcher, measured in one run.

Renders 60 frames at 640x480 of the embedded ID-card scene (the time to render is not counted), then prepares the
frames folder with real pycolmap, alternating the matchers (sequential, exhaustive, sequential, ...) for `--pairs`
pairs, and prints the median seconds per stage and the median and range of the exhaustive / sequential ratios of the
pairs. Usage:

    python benchmarks/prepare.py [--frames 60] [--width 640] [--height 480] [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from timing import interleaved, ratios, summary

from nerftune.data.prepare import REPORT_FILE
from nerftune.data.prepare import main as prepare_main
from nerftune.data.synthetic import SceneOptions, write_scene

STAGES = ("extract", "features", "matching", "mapping", "document")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    reports: dict[str, list[dict]] = {"sequential": [], "exhaustive": []}
    with tempfile.TemporaryDirectory() as tmp:
        options = SceneOptions(frames=args.frames, width=args.width, height=args.height)
        scene = write_scene(Path(tmp) / options.name(), options)

        def prepare_with(matcher: str) -> float:
            out = Path(tmp) / f"{matcher}{len(reports[matcher])}"
            assert prepare_main([str(scene / "images"), "--out", str(out), "--matcher", matcher]) == 0
            reports[matcher].append(json.loads((out / REPORT_FILE).read_text()))
            return sum(reports[matcher][-1]["seconds"][s] for s in STAGES)

        interleaved({matcher: (lambda m=matcher: prepare_with(m)) for matcher in reports}, args.pairs)
    print(f"\nnerftune prepare, {args.frames} frames at {args.width}x{args.height} (synthetic ID-card scene)")
    print(
        f"{'stage':<12}{'sequential':>13}{'exhaustive':>13}  exhaustive / sequential, median (range) of {args.pairs} pairs"
    )
    for stage in (*STAGES, "total"):
        per = {
            m: [sum(r["seconds"][s] for s in STAGES) if stage == "total" else r["seconds"][stage] for r in runs]
            for m, runs in reports.items()
        }
        print(
            f"{stage:<12}{statistics.median(per['sequential']):>12.1f}s{statistics.median(per['exhaustive']):>12.1f}s"
            f"  {summary(ratios(per['exhaustive'], per['sequential']), 2)}"
        )
    for matcher, runs in reports.items():
        report = runs[-1]
        print(
            f"{matcher}: {report['frames_registered']}/{report['frames_in']} registered, {report['points']} points, "
            f"reprojection error {report['mean_reprojection_error_px']:.2f} px"
        )


if __name__ == "__main__":
    main()
