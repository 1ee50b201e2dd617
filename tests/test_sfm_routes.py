"""Poses on hard captures: camera-model choice, recovery, focal priors and global mapping, with real pycolmap on
synthetic scenes made hard the way real captures are (plain surfaces, wide baselines, a wide-angle lens)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nerftune.data.align import PoseError, pose_error
from nerftune.data.focal import FocalPrior
from nerftune.data.lenses import capture_lenses
from nerftune.data.sfm_choice import SIMPLER_MODEL, choose_mapper
from nerftune.data.synthetic import SceneOptions, write_scene
from test_prepare import run_prepare

# 70 degrees vertically: COLMAP's default focal guess (1.2 x 480 = 576 px) is more than twice the truth (257 px)
WIDE = dict(width=480, height=360, fov_y_deg=70.0)
HORIZONTAL_FOV = math.degrees(2 * math.atan(240 / (180 / math.tan(math.radians(35)))))
LOW_TEXTURE = SceneOptions(frames=24, azimuth_range_deg=200.0, texture="low", **WIDE)  # 8.7 degrees apart
WIDE_BASELINE = SceneOptions(frames=16, azimuth_range_deg=240.0, texture="low", **WIDE)  # 16 degrees apart
RICH_WIDE_ANGLE = SceneOptions(frames=24, azimuth_range_deg=140.0, **WIDE)
BOUNDS = (0.02, 2.0)  # test_prepare's: camera centres within 2 % of the scene size, rotations within 2 degrees


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hard")
    return {o.name(): write_scene(root / o.name(), o) for o in (LOW_TEXTURE, WIDE_BASELINE, RICH_WIDE_ANGLE)}


def prepare(scene: Path, out: Path, *args) -> dict:
    result = run_prepare(scene / "images", "--out", out, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "prepare_report.json").read_text()) | {"stderr": result.stderr}


def error_against_truth(scene: Path, out: Path) -> PoseError:
    truth = {Path(f["file_path"]).name: f["transform_matrix"] for f in read(scene / "transforms.json")["frames"]}
    found = {Path(f["file_path"]).name: f["transform_matrix"] for f in read(out / "transforms.json")["frames"]}
    names = sorted(found)
    return pose_error([np.array(found[n]) for n in names], [np.array(truth[n]) for n in names])


def read(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.slow
def test_auto_registers_as_many_frames_as_the_best_fixed_model_on_a_low_texture_capture(scenes, tmp_path):
    scene = scenes[LOW_TEXTURE.name()]
    fixed = {
        model: prepare(scene, tmp_path / model, "--camera-model", model, "--min-registered", "0.05")
        for model in ("SIMPLE_RADIAL", "OPENCV")
    }
    auto = prepare(scene, tmp_path / "auto")
    best = max(report["frames_registered"] for report in fixed.values())
    assert auto["frames_registered"] >= best >= LOW_TEXTURE.frames // 2, {
        m: r["frames_registered"] for m, r in fixed.items()
    }
    assert auto["recovery"] == [] and auto["mapper"] == "incremental"
    assert error_against_truth(scene, tmp_path / "auto").within(*BOUNDS)
    # the same frames give the same poses, on a busy machine too: with matching and mapping on every core, OPENCV's
    # cameras here moved from run to run (in 7 of 11 runs under load), and a CI run failed on it
    with busy_cores():
        again = prepare(scene, tmp_path / "again", "--camera-model", "OPENCV", "--min-registered", "0.05")
    assert again["frames_registered"] == fixed["OPENCV"]["frames_registered"]
    first, second = read(tmp_path / "OPENCV" / "transforms.json"), read(tmp_path / "again" / "transforms.json")
    assert [f["file_path"] for f in first["frames"]] == [f["file_path"] for f in second["frames"]]
    for a, b in zip(first["frames"], second["frames"]):
        np.testing.assert_allclose(a["transform_matrix"], b["transform_matrix"], atol=1e-6)


@contextmanager
def busy_cores():
    """A spinning process per core, so that threads finish in other orders than on an idle machine."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in os.sched_getaffinity(0)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@pytest.mark.slow
def test_recovery_tries_the_cheaper_fixes_in_order_and_keeps_the_best(scenes, tmp_path):
    scene = scenes[WIDE_BASELINE.name()]
    report = prepare(scene, tmp_path / "out")
    first = max(a["frames_registered"] for a in report["camera_model_attempts"])
    assert first < WIDE_BASELINE.frames / 2, "the capture is hard enough to need a fix"
    steps = [attempt["step"] for attempt in report["recovery"]]
    # simpler than the model kept before recovery: SIMPLE_RADIAL's, or OPENCV's where it was kept (multi-threaded
    # SfM varies between runs, and one CI run kept OPENCV on this capture)
    tried = {f"simpler camera model ({SIMPLER_MODEL[a['camera_model']]})" for a in report["camera_model_attempts"]}
    assert steps[0] in tried, (steps, tried)
    assert steps[-1] == "relaxed initialisation and triangulation"
    assert "exhaustive matching" not in steps, "a folder is matched exhaustively from the start"
    assert report["frames_registered"] >= WIDE_BASELINE.frames / 2 > first
    assert report["frames_registered"] == max(a["frames_registered"] for a in report["recovery"])
    assert "recovery 1/2: simpler camera model" in report["stderr"] and "within 300 s" in report["stderr"]
    # relaxed thresholds trade some accuracy for registration: looser than BOUNDS, far from a wrong solution
    assert error_against_truth(scene, tmp_path / "out").within(0.1, 10.0)


@pytest.mark.slow
def test_a_failed_recovery_lists_what_it_tried_and_keeps_out(scenes, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in (0, 7, 15):  # three frames 120 degrees apart over plain surfaces: nothing to register
        image = scenes[WIDE_BASELINE.name()] / "images" / f"frame_{index:05d}.png"
        (frames / image.name).write_bytes(image.read_bytes())
    result = run_prepare(frames, "--out", tmp_path / "out", "--matcher", "sequential", "--recovery-seconds", "60")
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    tried = line.split("tried: ")[1]
    order = ("simpler camera model", "exhaustive matching", "relaxed initialisation")
    assert all(step in tried for step in order), line
    assert [tried.index(step) for step in order] == sorted(tried.index(step) for step in order)
    assert "within 60 s" in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_focal_prior_lets_global_mapping_reach_incremental_accuracy(scenes, tmp_path):
    scene = scenes[RICH_WIDE_ANGLE.name()]
    report = prepare(scene, tmp_path / "global", "--mapper", "global", "--fov", f"{HORIZONTAL_FOV:.3f}")
    assert report["mapper"] == "global" and report["frames_registered"] == RICH_WIDE_ANGLE.frames
    assert report["focal_prior"]["focal_px"] == pytest.approx(0.5 * 360 / math.tan(math.radians(35)), rel=1e-3)
    assert error_against_truth(scene, tmp_path / "global").within(*BOUNDS)
    # auto with the prior maps both ways and reports both, whichever it keeps
    auto = prepare(scene, tmp_path / "auto", "--focal-mm", "20")
    assert [a["mapper"] for a in auto["mapper_attempts"]] == ["incremental", "global"]
    assert sum(a["kept"] for a in auto["mapper_attempts"]) == 1 and "reason" in auto["mapper_attempts"][1]
    assert auto["focal_prior"]["source"] == "--focal-mm 20"


def summary(registered: int, error: float) -> dict:
    return {"frames_registered": registered, "mean_reprojection_error_px": error}


def test_global_mapping_is_kept_only_with_more_frames_a_small_error_and_agreeing_poses():
    agrees, disagrees = PoseError(0.01, 0.005, 1.0, 0.5), PoseError(0.54, 0.3, 40.0, 20.0)
    assert choose_mapper(summary(20, 0.8), summary(36, 0.6), agrees)[0]
    assert not choose_mapper(summary(36, 0.8), summary(36, 0.6), agrees)[0], "no more frames"
    assert not choose_mapper(summary(20, 0.8), summary(36, 3.1), agrees)[0], "reprojection error too large"
    kept, reason = choose_mapper(summary(20, 0.8), summary(36, 0.6), disagrees)
    assert not kept and "54.0 % of the scene" in reason, "the issue's real capture: 36 frames, cameras 54 % off"
    assert not choose_mapper(summary(0, math.nan), summary(0, math.nan), None)[0]


def test_focal_priors_become_pixels_for_the_frames_as_written(tmp_path):
    # a 26 mm-equivalent lens (a phone's main camera) on 1920x1080 frames: about 1301 px
    assert FocalPrior("35mm", 26, "").pixels(1920, 1080) == pytest.approx(26 / 43.2666 * math.hypot(1920, 1080))
    assert FocalPrior("fov", 90, "").pixels(640, 480) == pytest.approx(320)
    assert FocalPrior("pixels", 500, "", width=1000).pixels(500, 400) == pytest.approx(250), "scaled with the frames"
    assert not FocalPrior("35mm", 1, "").is_possible() and FocalPrior("35mm", 13, "").is_possible()


def test_focal_prior_from_exif_and_from_a_phone_video(tmp_path):
    import av

    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 26  # FocalLengthIn35mmFilm
    Image.new("RGB", (64, 48)).save(tmp_path / "IMG_0001.jpg", exif=exif)
    [lens] = capture_lenses(tmp_path, [tmp_path / "IMG_0001.jpg"])
    assert lens.prior.value == 26 and lens.prior.source == "EXIF of IMG_0001.jpg"
    Image.new("RGB", (64, 48)).save(tmp_path / "IMG_0002.jpg", exif=exif)
    Image.new("RGB", (64, 48)).save(tmp_path / "plain.jpg")
    [lens] = capture_lenses(tmp_path, sorted(tmp_path.glob("*.jpg")))
    assert lens.prior.value == 26 and lens.prior.source == "EXIF of IMG_0001.jpg and 1 more"
    assert lens.photos == (), "one lens took every photo, those without EXIF too"
    [lens] = capture_lenses(tmp_path, [tmp_path / "plain.jpg"])
    assert lens.prior is None

    video = tmp_path / "capture.mov"
    with av.open(str(video), "w", options={"movflags": "use_metadata_tags"}) as container:
        container.metadata["com.apple.quicktime.camera.focal_length.35mm_equivalent"] = "24"  # as an iPhone writes
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
        container.mux(stream.encode())
    [lens] = capture_lenses(video, [])
    assert lens.prior.value == 24 and lens.photos == ()


def exif_photo(path: Path, focal: float | None = None, lens: str | None = None, model: str | None = None) -> Path:
    exif = Image.Exif()
    if model:
        exif[0x0110] = model  # Model
    if focal:
        exif.get_ifd(0x8769)[0xA405] = focal  # FocalLengthIn35mmFilm
    if lens:
        exif.get_ifd(0x8769)[0xA434] = lens  # LensModel
    Image.new("RGB", (64, 48)).save(path, exif=exif)
    return path


def test_photos_of_several_focal_lengths_are_one_lens_each_most_photos_first(tmp_path):
    for name, focal in (("IMG_1.jpg", 13), ("IMG_2.jpg", 26), ("IMG_3.jpg", 26), ("IMG_4.jpg", None), ("IMG_5.jpg", 1)):
        exif_photo(tmp_path / name, focal, model="iPhone 13 Pro" if focal else None)
    lenses = capture_lenses(tmp_path, sorted(tmp_path.glob("*.jpg")))
    assert [(lens.prior and lens.prior.value, lens.photos) for lens in lenses] == [
        (26, ("IMG_2.jpg", "IMG_3.jpg")),
        (13, ("IMG_1.jpg",)),
        (None, ("IMG_5.jpg",)),  # a focal length no camera model here describes: its own lens, without a prior
        (None, ("IMG_4.jpg",)),  # no EXIF focal length: which lens took it is unknown
    ]
    assert [lens.describe() for lens in lenses[1:]] == [
        "13 mm: 1 photo",  # every lens has the same camera model: it tells nothing apart, and is left out
        "1 mm: 1 photo",
        "no EXIF focal length: 1 photo",
    ]


def test_two_lenses_of_one_focal_length_are_told_apart_by_their_lens_model(tmp_path):
    """An iPhone can take a close-up with its ultra-wide lens at the main lens's framing: the EXIF lens model tells
    the two apart where the 35 mm-equivalent focal length does not. Another phone is another camera too."""
    main, ultra_wide = "iPhone 13 Pro back triple camera 5.7mm f/1.5", "iPhone 13 Pro back triple camera 1.57mm f/1.8"
    photos = [
        exif_photo(tmp_path / "IMG_1.jpg", 26, main),
        exif_photo(tmp_path / "IMG_2.jpg", 26, main),
        exif_photo(tmp_path / "IMG_3.jpg", 26, ultra_wide),
        exif_photo(tmp_path / "PXL_1.jpg", 26, model="Pixel 7"),
    ]
    lenses = capture_lenses(tmp_path, photos)
    assert [lens.describe() for lens in lenses] == [
        f"26 mm ({main}): 2 photos",
        f"26 mm ({ultra_wide}): 1 photo",
        "26 mm (Pixel 7): 1 photo",
    ]
    assert all(lens.prior.value == 26 for lens in lenses)
    [one] = capture_lenses(tmp_path, photos[:2] + [exif_photo(tmp_path / "plain.jpg")])
    assert one.photos == () and one.prior.source == "EXIF of IMG_1.jpg and 1 more", "one lens, the plain photo too"


def test_a_camera_file_gives_its_shared_focal_length_or_its_one_lens_per_frame(tmp_path):
    from nerftune.data.focal import from_arguments
    from nerftune.errors import InputError

    def camera_file(name: str, content: dict) -> Path:
        (tmp_path / name).write_text(json.dumps(content))
        return tmp_path / name

    shared = camera_file("shared.json", {"fl_x": 1000.0, "w": 2000, "frames": [{"fl_x": 1.0, "w": 1}]})
    assert from_arguments(None, None, shared).pixels(1000, 750) == pytest.approx(500), "the shared one, as nerfstudio"
    one_lens = camera_file("one.json", {"w": 2000, "frames": [{"fl_x": 1000.0}, {"fl_x": 1000.0}]})
    assert from_arguments(None, None, one_lens).pixels(1000, 750) == pytest.approx(500)
    shared_width = camera_file("width.json", {"w": 2000, "frames": [{"fl_x": 1000.0, "w": 4000}, {"fl_x": 1000.0}]})
    assert from_arguments(None, None, shared_width).pixels(1000, 750) == pytest.approx(500), "shared, key by key"
    two_lenses = camera_file("two.json", {"w": 2000, "frames": [{"fl_x": 1000.0}, {"fl_x": 560.0}]})
    with pytest.raises(InputError) as refused:
        from_arguments(None, None, two_lenses)
    assert "--camera: gives its frames 2 different focal lengths (a capture of several lenses" in refused.value.line()
    with pytest.raises(InputError, match="needs numbers"):
        from_arguments(None, None, camera_file("none.json", {"w": 2000, "frames": [{"file_path": "a.png"}]}))
