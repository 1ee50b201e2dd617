"""`nerftune prepare` with real pycolmap on the synthetic scene, whose cameras and card centre are known exactly."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import ROOT, run_cli
from nerftune.data.align import similarity
from nerftune.data.sfm_choice import choose_camera_model
from nerftune.data.synthetic import (
    CARD_HEIGHT,
    POINT_OF_INTEREST,
    SceneOptions,
    camera_poses,
    intrinsics,
    render_view,
    write_scene,
)

CAPTURE = SceneOptions(frames=36, width=480, height=360)
NEARLY_ALL = 33  # of 36 frames: 90 % (all register in practice; SfM is not bit-for-bit repeatable across threads)


def run_prepare(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nerftune", "prepare", *map(str, args)],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("capture") / CAPTURE.name(), CAPTURE)


@pytest.fixture(scope="module")
def video(capture, tmp_path_factory) -> Path:
    """An H.264 mp4 of the capture's frames, as a phone would record them (lossy)."""
    return write_video(tmp_path_factory.mktemp("video") / "capture.mp4", sorted((capture / "images").iterdir()))


@pytest.fixture(scope="module")
def prepared(capture, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "card"
    result = run_prepare(capture / "images", "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def true_poses(capture: Path) -> list[np.ndarray]:
    frames = json.loads((capture / "transforms.json").read_text())["frames"]
    return [np.array(frame["transform_matrix"]) for frame in sorted(frames, key=lambda f: f["file_path"])]


def check_against_truth(out: Path, capture: Path, min_registered: int) -> dict:
    """Registration, pose accuracy after a similarity alignment, and the point of interest."""
    report = json.loads((out / "prepare_report.json").read_text())
    transforms = json.loads((out / "transforms.json").read_text())
    truth = true_poses(capture)
    assert report["frames_in"] == CAPTURE.frames
    assert report["frames_registered"] >= min_registered, report["unregistered"]
    names = [Path(frame["file_path"]).name for frame in transforms["frames"]]
    assert names == report["registered"]
    estimated = [np.array(frame["transform_matrix"]) for frame in transforms["frames"]]
    matching = [truth[int(name[6:11])] for name in names]  # frame_00007.png is the 8th frame
    fit = similarity(estimated, matching)
    scale, rotation, shift = fit.scale, fit.rotation, fit.shift

    centres = np.array([t[:3, 3] for t in matching])
    scene_size = float(np.linalg.norm(centres.max(0) - centres.min(0)))
    for e, t in zip(estimated, matching):
        cos = (np.trace((rotation @ e[:3, :3]).T @ t[:3, :3]) - 1) / 2
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))) < 2.0
        assert np.linalg.norm(scale * rotation @ e[:3, 3] + shift - t[:3, 3]) < 0.02 * scene_size

    document = transforms["nerftune"]
    poi = scale * rotation @ np.array(document["point_of_interest"]) + shift
    assert np.linalg.norm(poi - np.array(POINT_OF_INTEREST)) < 0.05 * scene_size, poi
    normal = rotation @ np.array(document["document_normal"])
    assert normal[2] > np.cos(np.radians(5)), "the document's normal is the card's, towards the cameras"
    return document | {"scale": scale, "rotation": rotation, "shift": shift}


@pytest.mark.slow
def test_frames_folder_recovers_cameras_and_point_of_interest(prepared, capture):
    found = check_against_truth(prepared, capture, min_registered=NEARLY_ALL)
    report = json.loads((prepared / "prepare_report.json").read_text())
    assert report["matcher"] == "exhaustive" and report["mean_reprojection_error_px"] < 1.5
    assert report["options"]["max_size"] == 1600, "nerfstudio's size for training a larger capture, by default"
    assert set(report["seconds"]) >= {"extract", "features", "matching", "mapping"}
    # --camera-model auto (the default) mapped both models on the same matches and kept what the rule says
    attempts = report["camera_model_attempts"]
    assert [a["camera_model"] for a in attempts] == ["SIMPLE_RADIAL", "OPENCV"]
    assert report["camera_model"] == attempts[choose_camera_model(attempts)]["camera_model"]
    assert all(a["frames_registered"] >= NEARLY_ALL and a["seconds"] > 0 for a in attempts)
    # the crop keeps the card and what lies behind it, and cuts off what is between it and the cameras
    to_data = np.linalg.inv(np.block([[found["scale"] * found["rotation"], found["shift"][:, None]], [0, 0, 0, 1]]))
    in_data = lambda p: (to_data @ np.append(p, 1.0))[:3]  # noqa: E731
    crop = found["crop"]
    keeps = lambda p: (in_data(p) - crop["point"]) @ np.array(crop["normal"]) <= crop["margin"]  # noqa: E731
    assert keeps(np.array(POINT_OF_INTEREST)) and keeps(np.array([0.3, 0.1, -0.2]))
    assert not keeps(np.array([0.0, 0.0, 0.3])), "a point 3 cm above the card is cut off"
    assert not keeps(np.array([0.2, -0.1, CARD_HEIGHT]))


@pytest.mark.slow
def test_prepared_folder_is_read_by_nerfstudio_with_its_sparse_points(prepared):
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    report = json.loads((prepared / "prepare_report.json").read_text())
    outputs = NerfstudioDataParserConfig(data=prepared, load_3D_points=True).setup().get_dataparser_outputs("train")
    assert outputs.metadata["points3D_xyz"].shape == (report["points"], 3)
    assert report["points"] > 200
    assert outputs.cameras.width[0].item() == CAPTURE.width


@pytest.mark.slow
def test_mp4_video_recovers_cameras_and_point_of_interest(video, capture, tmp_path):
    result = run_prepare(video, "--out", tmp_path / "card")
    assert result.returncode == 0, result.stderr[-3000:]
    stages = ("frames", "features", "mapping (SIMPLE_RADIAL)", "mapping (OPENCV)")  # auto maps with both models
    assert all(f"{stage}:" in result.stderr for stage in stages), "progress bars"
    assert not re.search(r"mapping \(\w+\): *\d+frame \[", result.stderr), "no bar runs past the frame count"
    report = json.loads((tmp_path / "card" / "prepare_report.json").read_text())
    assert report["matcher"] == "sequential"
    check_against_truth(tmp_path / "card", capture, min_registered=NEARLY_ALL)
    # it says what it kept against what, whether it found the document, and how to use the folder
    said = result.stdout.splitlines()
    assert said[0].startswith(f"{tmp_path / 'card'}: {report['frames_registered']}/36 frames registered, ")
    tried = r"SIMPLE_RADIAL \d+ frames at [\d.]+ px, OPENCV \d+ frames at [\d.]+ px"
    assert re.fullmatch(rf"camera: {report['camera_model']} \(tried: {tried}\); incremental mapping", said[1]), said
    assert said[2].startswith("point of interest: the document's centre, on a plane of ")
    assert said[3] == f"use it: `data: {tmp_path / 'card'}` in a sweep spec; everything prepare did: " + str(
        tmp_path / "card" / "prepare_report.json"
    )


@pytest.mark.slow
def test_masks_are_honoured_no_features_in_black_areas(capture, tmp_path):
    import pycolmap

    masks = tmp_path / "masks"
    masks.mkdir()
    black_left = np.full((CAPTURE.height, CAPTURE.width), 255, np.uint8)
    black_left[:, : CAPTURE.width // 4] = 0
    for image in (capture / "images").iterdir():
        Image.fromarray(black_left).save(masks / image.name)
    out = tmp_path / "card"
    result = run_prepare(capture / "images", "--out", out, "--masks", masks, "--frames", 24)
    assert result.returncode == 0, result.stderr[-3000:]
    transforms = json.loads((out / "transforms.json").read_text())
    assert all((out / frame["mask_path"]).is_file() for frame in transforms["frames"])
    database = pycolmap.Database.open(out / "colmap" / "database.db")
    keypoints = [database.read_keypoints(image.image_id) for image in database.read_all_images()]
    database.close()
    assert len(keypoints) == 24 and all(len(k) > 50 for k in keypoints)
    assert min(k[:, 0].min() for k in keypoints) >= CAPTURE.width // 4 - 1, "a feature in the black band"


@pytest.mark.slow
def test_a_sweep_trial_trains_on_the_prepared_folder_with_its_split(prepared, write_spec, tmp_path):
    data = tmp_path / "card"
    shutil.copytree(prepared, data)
    count = len(json.loads((data / "transforms.json").read_text())["frames"])
    test = [3, count // 2]
    split = {"test": test, "train": [i for i in range(count) if i not in test]}
    (data / "split_indices.json").write_text(json.dumps(split))
    spec = write_spec(
        f"""\
        name: prepared
        data: {data}
        profile: tiny
        space: {{frames: 6, seed: 0, steps: 40}}
        resources: {{cpu: 1, gpu: 0}}
        eval: {{max_images: 1}}
        tracking: {{enabled: false}}
        """
    )
    result = run_cli(str(spec), "--storage", str(tmp_path / "sweeps"))
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "prepared"
    state = json.loads((sweep / "nerftune-sweep.json").read_text())
    (scene,) = state["scenes"].values()
    assert scene["test_files"] == [f"images/frame_{i:05d}.png" for i in test], "split_indices.json sets the split"
    row = pd.read_csv(sweep / "results.csv").iloc[0]
    assert row.steps_done == 40 and 5 < row.best_psnr < 60 and row.frames_used == 6
    # 2 test images of 480x360 on the CPU: worth compiling the hash grid for (training stays eager)
    assert "fast path: auto (on the CPU: scoring compiled)" in result.stdout
    assert row.implementation == "torch+compiled-scoring" and row.compile_s > 0


def capture_subset(capture: Path, folder: Path, count: int, step: int = 1) -> Path:
    folder.mkdir(parents=True)
    for image in sorted((capture / "images").iterdir())[: count * step : step]:
        shutil.copy(image, folder / image.name)
    return folder


def noise_image(seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (CAPTURE.height, CAPTURE.width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def bad_video(tmp_path: Path, capture: Path) -> list[str]:
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 50)
    return [str(tmp_path / "broken.mp4")]


def one_frame(tmp_path: Path, capture: Path) -> list[str]:
    return [str(capture_subset(capture, tmp_path / "frames", 1))]


def mismatched_masks(tmp_path: Path, capture: Path) -> list[str]:
    frames = capture_subset(capture, tmp_path / "frames", 6)
    masks = tmp_path / "masks"
    masks.mkdir()
    for image in sorted(frames.iterdir())[:5]:  # the sixth frame has no mask
        Image.new("L", (CAPTURE.width, CAPTURE.height), 255).save(masks / image.name)
    return [str(frames), "--masks", str(masks)]


def sideways_masks(tmp_path: Path, capture: Path) -> list[str]:
    frames = capture_subset(capture, tmp_path / "frames", 3)
    masks = tmp_path / "masks"
    masks.mkdir()
    for image in sorted(frames.iterdir()):  # portrait masks for landscape frames
        Image.new("L", (CAPTURE.height, CAPTURE.width), 255).save(masks / image.name)
    return [str(frames), "--masks", str(masks)]


def raw_photos(tmp_path: Path, capture: Path) -> list[str]:
    folder = tmp_path / "camera"
    folder.mkdir()
    for k in range(3):
        (folder / f"DSC_{k:04d}.DNG").write_bytes(b"II*\x00\x08\x00\x00\x00")  # their first bytes (a TIFF's)
    return [str(folder)]


def broken_heic_photo(tmp_path: Path, capture: Path) -> list[str]:
    folder = photos_with_orientation(capture, tmp_path / "iphone", [6, 6, 6], suffix=".HEIC")
    (folder / "frame_00001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")  # a HEIC's first bytes, cut off
    return [str(folder)]


def photos_of_two_lenses(tmp_path: Path, capture: Path) -> list[str]:
    """As an iPhone takes them where its macro mode switches to the ultra-wide lens for close-ups, with
    --focal-mm given: one focal length cannot be the prior of two lenses."""
    folder = tmp_path / "iphone"
    folder.mkdir()
    for k, image in enumerate(sorted((capture / "images").iterdir())[:6]):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0xA405] = 13 if k in (3, 4) else 26  # FocalLengthIn35mmFilm
        Image.open(image).convert("RGB").save(folder / f"IMG_{k:04d}.jpg", exif=exif)
    return [str(folder), "--focal-mm", "26"]


def photos_of_two_shapes(tmp_path: Path, capture: Path) -> list[str]:
    frames = capture_subset(capture, tmp_path / "frames", 3)
    Image.open(frames / "frame_00002.png").resize((400, 300)).save(frames / "frame_00002.png")
    return [str(frames)]


def too_few_registered(tmp_path: Path, capture: Path) -> list[str]:
    frames = capture_subset(capture, tmp_path / "frames", 5, step=3)  # 0, 3, ..., 12: 6 degrees apart
    for k in range(8):
        noise_image(k).save(frames / f"noise_{k}.png")
    return [str(frames)]


def impossible_focal(tmp_path: Path, capture: Path) -> list[str]:
    return [str(capture_subset(capture, tmp_path / "frames", 3)), "--focal-mm", "0.5"]


def negative_max_size(tmp_path: Path, capture: Path) -> list[str]:
    return [str(capture_subset(capture, tmp_path / "frames", 3)), "--max-size", "-1"]


def no_photos(tmp_path: Path, capture: Path) -> list[str]:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "spec.yaml").write_text("name: a\n")
    return [str(folder)]


def global_without_prior(tmp_path: Path, capture: Path) -> list[str]:
    return [str(capture_subset(capture, tmp_path / "frames", 3)), "--mapper", "global"]


ROBUSTNESS = {
    "undecodable video": (bad_video, "cannot be decoded as a video"),
    "fewer than 2 frames": (one_frame, "at least 2 are needed"),
    "masks do not match the frames": (mismatched_masks, "no mask for frame_00005.png"),
    "masks of another shape than their frames": (sideways_masks, "is 360x480, a different shape from its frame"),
    "a folder of raw photos": (raw_photos, "holds .dng photos, which are not read here"),
    "a folder of no photos": (no_photos, "notes: INPUT: holds no photos (read here: "),
    "a broken HEIC photo": (broken_heic_photo, "frame_00001.HEIC: unreadable image"),
    "one focal prior for photos of two lenses": (
        photos_of_two_lenses,
        "--focal-mm: gives one focal length, and the photos were taken with 2 lenses (EXIF, 35 mm-equivalent: "
        "26 mm: 4 photos; 13 mm: 2 photos) (leave it out: each lens's EXIF focal length is its prior)",
    ),
    "photos of two shapes": (photos_of_two_shapes, "frame_00002.png is 400x300 px as written, the first frame 480x360"),
    "too few frames registered": (too_few_registered, "tried: simpler camera model ("),
    "a focal prior impossible for a camera": (impossible_focal, "field of view of 177.4 degrees, impossible"),
    "a negative --max-size": (negative_max_size, "--max-size: is -1 px"),
    "global mapping without a focal prior": (global_without_prior, "only with a known focal length"),
}


@pytest.mark.parametrize("case", ROBUSTNESS)
def test_bad_capture_is_one_clear_line_and_keeps_out_untouched(case, capture, tmp_path):
    make, expected = ROBUSTNESS[case]
    args = make(tmp_path, capture)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier work")
    result = run_prepare(*args, "--out", out, "--overwrite")
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"], "a failed run loses nothing"
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


@pytest.mark.slow
def test_too_few_registered_names_the_registered_frames(capture, tmp_path):
    result = run_prepare(*too_few_registered(tmp_path, capture), "--out", tmp_path / "out")
    assert result.returncode == 2
    line = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    listed = line.split("frames (")[1].split(")")[0].split(", ")
    assert "of 13 frames" in line and 2 <= len(listed) <= 5, line
    assert set(listed) <= {f"frame_{i:05d}.png" for i in (0, 3, 6, 9, 12)}, "the scene frames, not the noise"


def test_existing_out_is_not_overwritten_without_the_flag(capture, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "transforms.json").write_text("{}")
    result = run_prepare(capture_subset(capture, tmp_path / "frames", 3), "--out", out)
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert (out / "transforms.json").read_text() == "{}"
    # a file where --out's folder would be: one line before any work (it was a traceback)
    result = run_prepare(tmp_path / "frames", "--out", out / "transforms.json" / "card")
    assert result.returncode == 2 and result.stderr == (
        f"error: {out / 'transforms.json' / 'card'}: --out: {out / 'transforms.json'} is a file, not a folder "
        "(choose another path)\n"
    )


def attempt(model: str, registered: int, error: float) -> dict:
    return {"camera_model": model, "frames_registered": registered, "mean_reprojection_error_px": error, "seconds": 1.0}


def test_the_richer_camera_model_must_keep_every_frame_and_lower_the_error():
    # the real low-texture capture of the issue: OPENCV registered 3 of 40 frames, SIMPLE_RADIAL 20
    assert choose_camera_model([attempt("SIMPLE_RADIAL", 20, 0.9), attempt("OPENCV", 3, 0.4)]) == 0
    assert choose_camera_model([attempt("SIMPLE_RADIAL", 40, 0.9), attempt("OPENCV", 40, 0.5)]) == 1
    assert choose_camera_model([attempt("SIMPLE_RADIAL", 40, 0.5), attempt("OPENCV", 40, 0.6)]) == 0
    assert choose_camera_model([attempt("SIMPLE_RADIAL", 38, 0.9), attempt("OPENCV", 40, 0.5)]) == 1
    assert choose_camera_model([attempt("SIMPLE_RADIAL", 0, math.nan), attempt("OPENCV", 0, math.nan)]) == 0


def test_frame_selection_is_even_with_both_ends_or_by_rate():
    from nerftune.data.capture import Selection, _pick

    assert _pick(100, Selection(count=5), None) == [0, 25, 50, 74, 99]
    assert _pick(3, Selection(count=10), None) == [0, 1, 2], "never more frames than the capture has"
    assert _pick(30, Selection(fps=10), 30.0) == list(range(0, 30, 3)), "every third frame of a 30 fps video"
    assert _pick(8, Selection(), None) == list(range(8))


def test_video_frames_are_picked_by_rate_and_downscaled(video, tmp_path):
    from nerftune.data.capture import Selection, read_frames

    # the video runs at 10 fps: every other frame
    capture = read_frames(video, Selection(fps=5, max_size=240, sharpest=False))
    frames = list(capture.frames)
    assert capture.count == len(frames) == 18 and [f.source for f in frames] == [
        f"video frame {i}" for i in range(0, CAPTURE.frames, 2)
    ]
    assert frames[0].image.size == (240, 180) and capture.orientation == "as stored"
    assert capture.picked() == "18 of 36 frames, evenly spaced"


def test_each_pick_stands_for_the_frames_nearest_it():
    from nerftune.data.frames import select_evenly
    from nerftune.data.sharpest import windows

    for total, count in ((36, 12), (100, 7), (10, 9), (5, 2)):
        targets = select_evenly(range(total), count)
        found = windows(targets, total)
        assert [i for window in found for i in window] == list(range(total)), "every frame once, in order"
        for target, window in zip(targets, found):
            assert target in window
            assert all(abs(i - target) == min(abs(i - t) for t in targets) for i in window), "nearest (or a tie)"
    by_rate = windows([0, 3, 6, 9], 11)  # --fps: the last frames after the last pick reach half a spacing
    assert by_rate == [range(0, 2), range(2, 5), range(5, 8), range(8, 11)]


def blur_all_but(capture: Path, folder: Path, sharp: set[int]) -> list[Path]:
    """The capture's frames with a horizontal motion blur of 9 px (a phone panning), except those in `sharp`."""
    from scipy.ndimage import uniform_filter1d

    folder.mkdir()
    frames = []
    for index, image in enumerate(sorted((capture / "images").iterdir())):
        pixels = np.asarray(Image.open(image).convert("RGB"))
        if index not in sharp:
            pixels = uniform_filter1d(pixels, size=9, axis=1)
        frames.append(folder / image.name)
        Image.fromarray(pixels).save(frames[-1])
    return frames


def test_the_sharpest_frame_near_each_evenly_spaced_one_is_kept(capture, tmp_path):
    from nerftune.data.capture import Selection, read_frames
    from nerftune.data.frames import select_evenly
    from nerftune.data.sharpest import windows

    targets = select_evenly(range(CAPTURE.frames), 12)
    rng = np.random.default_rng(0)
    sharp = [int(rng.choice(window)) for window in windows(targets, CAPTURE.frames)]
    assert sharp != targets, "the test needs sharp frames off the evenly spaced ones"
    blurred = blur_all_but(capture, tmp_path / "blurred", set(sharp))
    video = write_video(tmp_path / "handheld.mp4", blurred)

    from_folder = read_frames(tmp_path / "blurred", Selection(count=12))
    assert [f.source for f in from_folder.frames] == [blurred[i].name for i in sharp]
    picked = read_frames(video, Selection(count=12))
    assert [f.source for f in picked.frames] == [f"video frame {i}" for i in sharp]
    assert picked.picked().startswith("12 of 36 frames, each the sharpest of the 2 to 4 frames around an evenly")
    gain = float(picked.picked().split("median sharpness ")[1].split("x")[0])
    assert gain > 1.5, picked.picked()  # 8.6x here

    even = read_frames(video, Selection(count=12, sharpest=False))
    assert [f.source for f in even.frames] == [f"video frame {i}" for i in targets]


def test_a_steady_capture_keeps_its_evenly_spaced_frames(video):
    from nerftune.data.capture import Selection, read_frames
    from nerftune.data.frames import select_evenly

    steady = read_frames(video, Selection(count=12))  # no blur: no neighbour is much sharper than another
    assert [f.source for f in steady.frames] == [f"video frame {i}" for i in select_evenly(range(CAPTURE.frames), 12)]
    assert "(median sharpness 1.00x the evenly spaced frames')" in steady.picked()


def test_a_video_keeps_300_frames_unless_told_and_a_folder_all(video, capture):
    from nerftune.data.prepare import parse_arguments, selection_for

    def selection(*args):
        return selection_for(parse_arguments([*map(str, args), "--out", "out"]))

    assert selection(video).count == 300, "nerfstudio's ns-process-data keeps as many of a video"
    assert selection(video, "--frames", 50).count == 50
    assert (selection(video, "--fps", 2).count, selection(video, "--fps", 2).fps) == (None, 2.0)
    assert selection(capture / "images").count is None, "every image of a folder"


def write_video(path: Path, images: list[Path], rotation: float = 0) -> Path:
    """An H.264 mp4 of `images`; `rotation`: the display rotation a phone writes (a portrait video: -90)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10, options={"crf": "16"})
        stream.width, stream.height, stream.pix_fmt = CAPTURE.width, CAPTURE.height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_image(Image.open(image).convert("RGB"))))
        container.mux(stream.encode())
    return path


def test_a_portrait_phone_video_is_turned_upright_as_ffmpeg_shows_it(capture, tmp_path):
    from nerftune.data.capture import Selection, read_frames

    video = write_video(tmp_path / "portrait.mp4", sorted((capture / "images").iterdir())[:4], rotation=-90)
    shown = tmp_path / "ffmpeg.png"  # what a player shows: ffmpeg applies the display rotation
    subprocess.run(["ffmpeg", "-v", "error", "-i", video, "-frames:v", "1", shown], check=True)
    read = read_frames(video, Selection())
    first = next(read.frames).image
    ffmpeg = np.asarray(Image.open(shown).convert("RGB"), dtype=float)
    assert first.size == (CAPTURE.height, CAPTURE.width), "portrait, as the phone held it"
    assert np.abs(np.asarray(first, dtype=float) - ffmpeg).mean() < 3, "the same pixels, turned the same way"
    assert read.colour == "as stored", "an SDR video's colours are left as players show them"
    assert read.orientation == "turned upright by the video's display rotation (-90 degrees)"


def write_hdr_video(path: Path, images: list[Path], transfer: str) -> Path:
    """A 10-bit HEVC BT.2020 video of `images` as a phone records HDR (`transfer`: arib-std-b67 for an iPhone's
    HLG, smpte2084 for PQ), made by ffmpeg's zscale with the images' white at HDR reference white (203 cd/m2)."""
    convert = (
        f"zscale=tin=iec61966-2-1:pin=bt709:min=gbr:rin=full:t={transfer}:p=bt2020:m=bt2020nc:r=tv:npl=203,"
        "format=yuv420p10le"
    )
    tags = f"log-level=error:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc:range=limited"
    pattern = images[0].parent / "frame_%05d.png"
    command = ["ffmpeg", "-v", "error", "-framerate", "10", "-i", pattern, "-frames:v", str(len(images))]
    subprocess.run([*command, "-vf", convert, "-c:v", "libx265", "-x265-params", tags, path], check=True)
    return path


@pytest.mark.parametrize("transfer, name", [("arib-std-b67", "HLG"), ("smpte2084", "PQ")])
def test_an_hdr_phone_video_is_tone_mapped_to_the_sdr_frames_it_was_made_from(transfer, name, capture, tmp_path):
    import av

    from nerftune.data.capture import Selection, read_frames

    images = sorted((capture / "images").iterdir())[:3]
    video = write_hdr_video(tmp_path / "hdr.mov", images, transfer)
    read = read_frames(video, Selection(max_size=400))
    assert read.colour == f"tone-mapped from HDR ({name}) to SDR sRGB, as a player shows it"
    with av.open(str(video)) as container:  # what a conversion that ignores the transfer makes of it
        untouched = next(container.decode(video=0)).to_image().resize((400, 300), Image.Resampling.LANCZOS)
    for k, (frame, image) in enumerate(zip(read.frames, images, strict=True)):
        assert frame.image.size == (400, 300), "scaled to --max-size before the mapping"
        sdr = np.asarray(Image.open(image).convert("RGB").resize((400, 300), Image.Resampling.LANCZOS), dtype=float)
        error = np.abs(np.asarray(frame.image, dtype=float) - sdr).mean()
        assert error < 6, f"frame {k}: {error:.1f} levels from the SDR frame"
        if k == 0:
            washed_out = np.abs(np.asarray(untouched, dtype=float) - sdr).mean()
            assert washed_out > 2 * error, "the untouched conversion is far off: the test tells the two apart"


def photos_with_orientation(capture: Path, folder: Path, tags: list[int], suffix: str = ".jpg") -> Path:
    """The capture's first frames saved as JPEGs (or `suffix`), each with an EXIF orientation tag (6: turn 90
    degrees clockwise to view, as a phone held upright stores a photo). A HEIC gets HEIF's own rotation besides the
    tag, as an iPhone writes it (pillow-heif: the pixels stored as given, with an `irot` box)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    folder.mkdir()
    for tag, image in zip(tags, sorted((capture / "images").iterdir())):
        exif = Image.Exif()
        exif[0x0112] = tag
        Image.open(image).convert("RGB").save(folder / f"{image.stem}{suffix}", exif=exif.tobytes(), quality=95)
    return folder


def test_photos_are_turned_upright_by_their_exif_unless_they_disagree(capture, tmp_path):
    from nerftune.data.capture import Selection, read_frames

    portrait = read_frames(photos_with_orientation(capture, tmp_path / "portrait", [6, 6, 6]), Selection())
    frames = list(portrait.frames)
    stored = Image.open(tmp_path / "portrait" / "frame_00000.jpg").convert("RGB")
    assert [f.image.size for f in frames] == [(CAPTURE.height, CAPTURE.width)] * 3
    assert np.array_equal(np.asarray(frames[0].image), np.rot90(np.asarray(stored), k=-1)), "turned clockwise"
    assert portrait.orientation == "turned upright by their EXIF orientation (6)"

    mixed = read_frames(photos_with_orientation(capture, tmp_path / "mixed", [6, 1, 6]), Selection())
    assert [f.image.size for f in mixed.frames] == [(CAPTURE.width, CAPTURE.height)] * 3, "one shape: as stored"
    assert mixed.orientation.startswith("as stored, sideways in viewers: 2 of 3 photos carry an EXIF turn")


@pytest.mark.parametrize("tags", [[6, 6, 6], [8, 8, 8], [6, 1, 6], [1, 1, 1]])
def test_iphone_heic_photos_are_read_and_turned_as_their_jpegs_would_be(tags, capture, tmp_path):
    """pillow-heif turns a HEIC upright as it opens it; the frames must still follow the folder's rule: upright
    where all photos agree, all as stored where they do not."""
    from nerftune.data.capture import Selection, read_frames

    heic = read_frames(photos_with_orientation(capture, tmp_path / "heic", tags, ".HEIC"), Selection())
    jpeg = read_frames(photos_with_orientation(capture, tmp_path / "jpeg", tags), Selection())
    assert heic.orientation == jpeg.orientation
    for from_heic, from_jpeg in zip(heic.frames, jpeg.frames, strict=True):
        assert from_heic.source.endswith(".HEIC") and from_heic.image.size == from_jpeg.image.size
        difference = np.abs(np.asarray(from_heic.image, dtype=float) - np.asarray(from_jpeg.image, dtype=float))
        assert difference.mean() < 3, "the same pixels, turned the same way (both lossy)"


def test_the_focal_length_of_an_iphone_heic_is_read_from_its_exif(capture, tmp_path):
    from nerftune.data.lenses import capture_lenses
    from nerftune.data.prepare import _photos

    folder = photos_with_orientation(capture, tmp_path / "heic", [6, 6], ".HEIC")
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769)[0xA405] = 26  # FocalLengthIn35mmFilm, as an iPhone's main camera writes it
    first = Image.open(capture / "images" / "frame_00000.png").convert("RGB")
    first.save(folder / "frame_00000.HEIC", exif=exif.tobytes())
    [lens] = capture_lenses(folder, _photos(folder))
    prior = lens.prior
    assert prior is not None and (prior.kind, prior.value, prior.source) == ("35mm", 26, "EXIF of frame_00000.HEIC")


def focal_35mm(options: SceneOptions) -> float:
    """The 35 mm-equivalent focal length of the scene's camera (the diagonal's), as a phone's EXIF gives it."""
    return intrinsics(options)["fl_y"] / math.hypot(options.width, options.height) * math.hypot(36, 24)


@pytest.mark.slow
def test_photos_of_two_lenses_get_a_camera_each_and_poses_a_shared_camera_gets_wrong(capture, tmp_path):
    """A phone's macro mode takes the close-ups with its ultra-wide lens: 12 of the 36 photos here, at 17 mm against
    28 mm. One shared camera maps them at a small reprojection error with cameras 19 % of the scene and 5 degrees
    off; a camera per lens passes the bounds of a one-lens capture."""
    ultra_wide = replace(CAPTURE, fov_y_deg=75.0)
    close_ups = range(12, 24)
    folder = tmp_path / "iphone"
    folder.mkdir()
    for k, pose in enumerate(camera_poses(CAPTURE)):
        lens = ultra_wide if k in close_ups else CAPTURE
        image = (
            render_view(pose, ultra_wide)[0]
            if k in close_ups
            else Image.open(capture / "images" / f"frame_{k:05d}.png")
        )
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0xA405] = round(focal_35mm(lens))  # FocalLengthIn35mmFilm, whole millimetres
        Image.fromarray(np.asarray(image)).convert("RGB").save(folder / f"IMG_{k:04d}.jpg", exif=exif, quality=95)
    out = tmp_path / "out"
    result = run_prepare(folder, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "lenses: 28 mm: 24 photos; 17 mm: 12 photos (EXIF): one camera each" in result.stderr
    assert re.search(
        r"^28 mm: \d+/24 registered, focal length 3\d\d\.\d px; 17 mm: \d+/12 registered", result.stdout, re.M
    )
    check_against_truth(out, capture, min_registered=NEARLY_ALL)

    transforms = json.loads((out / "transforms.json").read_text())
    assert "fl_x" not in transforms, "intrinsics per frame: nerfstudio ignores a frame's own where shared ones exist"
    for frame in transforms["frames"]:
        k = int(Path(frame["file_path"]).stem[6:])
        truth = intrinsics(ultra_wide if k in close_ups else CAPTURE)["fl_x"]
        assert frame["fl_x"] == pytest.approx(truth, rel=0.03), frame["file_path"]
    report = json.loads((out / "prepare_report.json").read_text())
    assert [(lens["lens"], lens["frames"], lens["focal_prior"]["source"]) for lens in report["lenses"]] == [
        ("28 mm", 24, "EXIF of IMG_0000.jpg and 23 more"),
        ("17 mm", 12, "EXIF of IMG_0012.jpg and 11 more"),
    ]
    assert report["lenses"][1]["fl_x"] == pytest.approx(intrinsics(ultra_wide)["fl_x"], rel=0.03)

    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    parsed = NerfstudioDataParserConfig(data=out, eval_mode="all").setup().get_dataparser_outputs("train")
    focal = {Path(name).stem: float(fx) for name, fx in zip(parsed.image_filenames, parsed.cameras.fx.ravel())}
    assert focal["frame_00012"] == pytest.approx(intrinsics(ultra_wide)["fl_x"], rel=0.03), "nerfstudio reads each"
    assert focal["frame_00000"] == pytest.approx(intrinsics(CAPTURE)["fl_x"], rel=0.03)


def test_prepare_says_a_single_attempt_and_a_missing_document_plainly():
    from nerftune.data.prepare_summary import summary_lines

    kept = {"frames_registered": 20, "mean_reprojection_error_px": 0.81234, "seconds": 2.0}
    report = {
        "frames_in": 40, "frames_registered": 20, "points": 900, "mean_reprojection_error_px": 0.81234,
        "camera_model": "SIMPLE_RADIAL", "camera_model_attempts": [{"camera_model": "SIMPLE_RADIAL", **kept}],
        "mapper": "incremental", "mapper_attempts": [{"mapper": "incremental", "kept": True, **kept}],
        "lenses": [{"lens": "the capture's", "frames": 40, "frames_registered": 20, "fl_x": 500.0}], "document": {},
    }
    assert summary_lines(Path("data/card"), report) == [
        "data/card: 20/40 frames registered, 900 points, reprojection error 0.81 px",
        "camera: SIMPLE_RADIAL; incremental mapping",
        "point of interest: no document plane found; camera paths aim where the cameras look (or `nerftune paths "
        "--poi x,y,z`), with no crop",
        "use it: `data: data/card` in a sweep spec; everything prepare did: data/card/prepare_report.json",
    ]
