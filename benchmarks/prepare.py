"""Seconds per stage of `nerftune prepare`, sequential vs exhaustive matcher, measured in one run.

Renders 60 frames at 640x480 of the embedded ID-card scene (the time to render is not counted), then prepares the
frames folder with real pycolmap, alternating the matchers (sequential, exhaustive, sequential, ...) for `--pairs`
pairs, and prints the median seconds per stage and the median and range of the exhaustive / sequential ratios of the
pairs. Usage:

    python benchmarks/prepare.py [--frames 60] [--width 640] [--height 480] [--pairs 3]
    python benchmarks/prepare.py --hard [--pairs 3]
    python benchmarks/prepare.py --blur [--pairs 3]
    python benchmarks/prepare.py --threads exhaustive [--pairs 3]

`--hard` prepares two hard captures instead (low texture: a plain table and the card's plain back; a 70-degree lens,
so COLMAP's first focal guess is 2.2x too long; 480x360): 24 frames over 200 degrees, and 16 frames over 240 degrees
(wide baselines). Each route (`auto`, each fixed camera model, global mapping with the true focal length as a prior,
auto with that prior) runs `--pairs` times, interleaved, and the table gives frames registered, reprojection error,
the worst camera error against the true poses after a similarity alignment, and the median seconds.

`--blur` prepares a handheld video instead: 90 frames at 480x360 (30 fps), two in three smeared by a motion blur
of 6 to 16 px in a random direction, picking 24 frames evenly (`--pick even`) or the sharpest near each of those
(`--pick sharpest`, the default), interleaved `--pairs` times: the picks' sharpness, frames registered,
reprojection error and the worst camera against the true poses.

`--threads MATCHER` compares matching and mapping on one thread (the default, so that the same frames give the
same poses) with matching and mapping on every core, the feature extraction being on every core in both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from timing import interleaved, ratios, summary

from nerftune.data import sfm
from nerftune.data.align import pose_error
from nerftune.data.prepare import REPORT_FILE
from nerftune.data.prepare import main as prepare_main
from nerftune.data.sfm import MATCHERS
from nerftune.data.synthetic import SceneOptions, write_scene

STAGES = ("extract", "features", "matching", "mapping", "document")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--hard", action="store_true", help="the hard captures and every SfM route instead")
    parser.add_argument("--threads", choices=MATCHERS, help="one thread vs every core for matching and mapping")
    parser.add_argument("--blur", action="store_true", help="a handheld video with blurred frames, even vs sharpest")
    args = parser.parse_args()
    if args.hard:
        return hard_captures(args.pairs)
    if args.blur:
        return blurred_video(args.pairs)
    # each variant: (matcher, threads for matching and mapping); the second is compared with the first
    if args.threads:
        variants = {"one thread": (args.threads, 1), "every core": (args.threads, -1)}
    else:
        variants = {"sequential": ("sequential", sfm.SFM_THREADS), "exhaustive": ("exhaustive", sfm.SFM_THREADS)}
    reports: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        options = SceneOptions(frames=args.frames, width=args.width, height=args.height)
        scene = write_scene(Path(tmp) / options.name(), options)

        def prepare_with(name: str) -> float:
            matcher, threads = variants[name]
            sfm.SFM_THREADS = threads  # read by matching and mapping at each call
            out = Path(tmp) / f"{name.replace(' ', '_')}{len(reports[name])}"
            assert prepare_main([str(scene / "images"), "--out", str(out), "--matcher", matcher]) == 0
            reports[name].append(json.loads((out / REPORT_FILE).read_text()))
            return sum(reports[name][-1]["seconds"][s] for s in STAGES)

        interleaved({name: (lambda n=name: prepare_with(n)) for name in reports}, args.pairs)
    first, second = reports
    print(f"\nnerftune prepare, {args.frames} frames at {args.width}x{args.height} (synthetic ID-card scene)")
    print(f"{'stage':<12}{first:>13}{second:>13}  {second} / {first}, median (range) of {args.pairs} pairs")
    for stage in (*STAGES, "total"):
        per = {
            name: [sum(r["seconds"][s] for s in STAGES) if stage == "total" else r["seconds"][stage] for r in runs]
            for name, runs in reports.items()
        }
        print(
            f"{stage:<12}{statistics.median(per[first]):>12.1f}s{statistics.median(per[second]):>12.1f}s"
            f"  {summary(ratios(per[second], per[first]), 2)}"
        )
    for name, runs in reports.items():
        report = runs[-1]
        print(
            f"{name}: {report['frames_registered']}/{report['frames_in']} registered, {report['points']} points, "
            f"reprojection error {report['mean_reprojection_error_px']:.2f} px"
        )


HARD = {
    "low texture, 24 frames over 200 degrees": SceneOptions(
        frames=24, width=480, height=360, fov_y_deg=70.0, azimuth_range_deg=200.0, texture="low"
    ),
    "low texture, wide baselines: 16 frames over 240 degrees": SceneOptions(
        frames=16, width=480, height=360, fov_y_deg=70.0, azimuth_range_deg=240.0, texture="low"
    ),
}
FOV = "86.1"  # the scenes' horizontal field of view: 70 degrees vertically at 4:3
ROUTES = {
    "auto (default)": [],
    "SIMPLE_RADIAL only": ["--camera-model", "SIMPLE_RADIAL", "--recovery-seconds", "0", "--min-registered", "0.01"],
    "OPENCV only": ["--camera-model", "OPENCV", "--recovery-seconds", "0", "--min-registered", "0.01"],
    "global, focal prior": ["--mapper", "global", "--fov", FOV, "--recovery-seconds", "0", "--min-registered", "0.01"],
    "auto, focal prior": ["--fov", FOV],
}


FAILED = {"frames_registered": 0, "mean_reprojection_error_px": float("nan"), "camera_model": "-", "mapper": "-"}


def hard_captures(pairs: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, options in HARD.items():
            scene = write_scene(Path(tmp) / options.name(), options)
            reports: dict[str, list[dict]] = {route: [] for route in ROUTES}

            def run(route: str) -> float:
                out = Path(tmp) / f"{options.name()}-{len(reports[route])}-{route.replace(' ', '_')}"
                start = time.perf_counter()
                failed = prepare_main([str(scene / "images"), "--out", str(out), *ROUTES[route]]) != 0
                report = FAILED if failed else json.loads((out / REPORT_FILE).read_text())
                reports[route].append(report | {"error": None if failed else _pose_error(scene, out)})
                return time.perf_counter() - start

            seconds = interleaved({route: (lambda r=route: run(r)) for route in ROUTES}, pairs)
            for route, runs in reports.items():
                for run_report, taken in zip(runs, seconds[route]):
                    run_report["seconds"] = taken
            rows += [(label, route, runs) for route, runs in reports.items()]
    print(f"\nnerftune prepare on hard synthetic captures (480x360, 70-degree lens), {pairs} runs per route")
    print(f"{'capture':<58}{'route':<22}{'registered':>12}{'error px':>10}{'worst camera':>22}{'seconds':>9}")
    for label, route, runs in rows:
        last = runs[-1]
        registered = "/".join(str(r["frames_registered"]) for r in runs)
        error = last["error"]
        worst = f"{100 * error.max_position:.1f} %, {error.max_rotation_deg:.1f} deg" if error else "failed"
        seconds = statistics.median(r["seconds"] for r in runs)
        kept = f" [{last['camera_model']}, {last['mapper']}{', recovered' if last.get('recovery') else ''}]"
        print(
            f"{label:<58}{route:<22}{registered:>12}{last['mean_reprojection_error_px']:>10.2f}{worst:>22}"
            f"{seconds:>8.1f}s{kept}"
        )


BLURRED = SceneOptions(frames=90, width=480, height=360)
BLURRED_PICK = 24


def blurred_video(pairs: int) -> None:
    from scipy.ndimage import uniform_filter1d

    reports: dict[str, list[dict]] = {"even": [], "sharpest": []}
    with tempfile.TemporaryDirectory() as tmp:
        scene = write_scene(Path(tmp) / BLURRED.name(), BLURRED)
        rng = np.random.default_rng(0)
        video = Path(tmp) / "handheld.mp4"
        with av.open(str(video), "w") as container:
            stream = container.add_stream("libx264", rate=30, options={"crf": "18"})
            stream.width, stream.height, stream.pix_fmt = BLURRED.width, BLURRED.height, "yuv420p"
            for image in sorted((scene / "images").iterdir()):
                pixels = np.asarray(Image.open(image).convert("RGB"))
                if rng.random() < 2 / 3:  # a phone moving during the exposure
                    pixels = uniform_filter1d(pixels, size=int(rng.integers(6, 17)), axis=int(rng.integers(2)))
                container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
            container.mux(stream.encode())

        def run(pick: str) -> float:
            out = Path(tmp) / f"{pick}{len(reports[pick])}"
            start = time.perf_counter()
            assert prepare_main([str(video), "--out", str(out), "--frames", str(BLURRED_PICK), "--pick", pick]) == 0
            report = json.loads((out / REPORT_FILE).read_text())
            reports[pick].append(report | {"error": _pose_error(scene, out), "seconds": time.perf_counter() - start})
            return reports[pick][-1]["seconds"]

        interleaved({pick: (lambda p=pick: run(p)) for pick in reports}, pairs)
    size = f"{BLURRED.width}x{BLURRED.height}"
    print(f"\nnerftune prepare on a handheld video ({BLURRED.frames} frames at {size}, two in three")
    print(f"motion-blurred by 6 to 16 px), {BLURRED_PICK} frames picked, {pairs} runs each")
    print(f"{'pick':<10}{'registered, each run':>24}{'error px':>10}{'worst camera':>22}{'seconds':>9}  frames")
    for pick, runs in reports.items():
        last = runs[-1]
        registered = ", ".join(str(r["frames_registered"]) for r in runs) + f" of {last['frames_in']}"
        error = last["error"]
        worst = f"{100 * error.max_position:.1f} %, {error.max_rotation_deg:.1f} deg"
        seconds = statistics.median(r["seconds"] for r in runs)
        print(
            f"{pick:<10}{registered:>24}{last['mean_reprojection_error_px']:>10.2f}{worst:>22}{seconds:>8.1f}s"
            f"  {last['picked']}"
        )


def _pose_error(scene: Path, out: Path):
    """The worst camera of `out` against the scene's true poses, after a similarity alignment; frames are matched
    through the report's sources (a file name, or "video frame N": the scene's Nth frame)."""
    truth = [f["transform_matrix"] for f in json.loads((scene / "transforms.json").read_text())["frames"]]
    sources = json.loads((out / REPORT_FILE).read_text())["sources"]
    found = {
        Path(f["file_path"]).name: f["transform_matrix"]
        for f in json.loads((out / "transforms.json").read_text())["frames"]
    }
    names = sorted(found)
    return pose_error([np.array(found[n]) for n in names], [np.array(truth[_source_index(sources[n])]) for n in names])


def _source_index(source: str) -> int:
    """`frame_00007.png` or `video frame 7`: 7."""
    return int(source.split()[-1]) if source.startswith("video frame") else int(Path(source).stem.split("_")[-1])


if __name__ == "__main__":
    main()
