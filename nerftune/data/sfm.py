"""Structure from motion with pycolmap: SIFT features (masked), sequential or exhaustive matching, and incremental
or global mapping of the matches.

A capture's frames share one camera per lens: a phone video is one lens, a folder of photos may hold several (a
phone's macro mode switches to its ultra-wide lens). Two lenses in one camera can fit the matches well and still be
wrong: on the synthetic card, 12 of 36 photos taken at 17 mm and the rest at 28 mm mapped with one camera at 0.60 px
of reprojection error, with cameras up to 19 % of the scene and 5.3 degrees off; with a camera per lens, 0.6 % and
0.4 degrees. The largest reconstruction wins; its poses and points are returned in COLMAP's world frame with OpenGL
camera-to-world matrices, nerfstudio's convention. Which camera model, mapper and settings to trust is decided in
`sfm_choice`; this module only runs them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pycolmap
from tqdm import tqdm

MATCHERS = ("sequential", "exhaustive")
CAMERA_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")  # fewest parameters first
MAPPERS = ("incremental", "global")
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])  # camera axes: y down / z forward -> y up / z backward
EXTRACTION_CHUNK = 8
# Matching and mapping run on one thread, so that the same frames give the same poses. With more, they did not, on
# a busy machine: multi-threaded matching now and then lost a pair's matches (6 in 193 runs of one capture; likely
# pycolmap's bundled OpenBLAS, called by the matcher's threads at once: brute-force matching, which does not use it,
# never did), and multi-threaded bundle adjustment moved OPENCV's cameras in 7 of 11 runs. Feature extraction is
# per frame and keeps every thread.
SFM_THREADS = 1
pycolmap.logging.minloglevel = 3  # COLMAP's log lines would drown the progress bars; failures are reported here


@dataclass
class Reconstruction:
    image_names: list[str]  # every frame given, in order
    poses: dict[str, np.ndarray]  # registered frame -> 4x4 camera-to-world (OpenGL)
    camera: dict[str, float | str]  # nerfstudio intrinsics: camera_model, w, h, fl_x, fl_y, cx, cy, k1, k2, p1, p2
    points: np.ndarray  # (N, 3)
    colors: np.ndarray  # (N, 3) uint8
    mean_reprojection_error: float
    seconds: dict[str, float] = field(default_factory=dict)
    model: pycolmap.Reconstruction | None = None  # COLMAP's own, for its exporters
    camera_model: str = ""  # the COLMAP model it was mapped with
    mapper: str = "incremental"
    # registered frame -> its lens's intrinsics, where the capture has several lenses (`camera` is then the lens
    # with the most registered frames)
    frame_cameras: dict[str, dict] = field(default_factory=dict)

    def summary(self, **extra) -> dict:
        """What a report keeps of an attempt: frames registered, reprojection error, seconds (and `extra`)."""
        return {
            **extra,
            "camera_model": self.camera_model,
            "frames_registered": len(self.registered),
            "mean_reprojection_error_px": round(self.mean_reprojection_error, 4),
            "seconds": round(sum(self.seconds.values()), 3),
        }

    def write_ply(self, path: Path) -> None:
        """The sparse points as a binary PLY with colours (COLMAP's exporter; nerfstudio reads it as
        `ply_file_path`)."""
        if self.model is None:
            raise ValueError("no reconstruction to export")
        self.model.export_PLY(str(path))

    @property
    def registered(self) -> list[str]:
        return [name for name in self.image_names if name in self.poses]

    @property
    def unregistered(self) -> list[str]:
        return [name for name in self.image_names if name not in self.poses]


@dataclass(frozen=True)
class Lens:
    """One camera of the capture: the frames it took (None: every frame), and its known focal length in pixels."""

    frames: tuple[str, ...] | None = None
    focal_prior_px: float | None = None


ONE_LENS = (Lens(),)


@dataclass(frozen=True)
class MapperSetting:
    """One mapping run: which mapper, how strict its initialisation and triangulation are, and a time bound."""

    mapper: str = "incremental"  # or "global"
    relaxed: bool = False
    max_seconds: float | None = None


def build_database(
    image_dir: Path,
    image_names: list[str],
    database: Path,
    matcher: str,
    camera_model: str,
    lenses: Sequence[Lens] = ONE_LENS,
    mask_dir: Path | None = None,
) -> dict[str, float]:
    """SIFT features of every frame (one camera per lens, with its prior) and verified matches, into `database`;
    returns seconds."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    reader = pycolmap.ImageReaderOptions(camera_model=camera_model)
    if mask_dir is not None:
        reader.mask_path = str(mask_dir)
    pycolmap.Database.open(database).close()  # creates the file, which import_images needs
    add_lenses(database, image_dir, image_names, camera_model, lenses, reader)
    # in chunks so that the progress bar moves (a chunk keeps every core busy)
    with tqdm(total=len(image_names), desc="features", unit="frame") as bar:
        for first in range(0, len(image_names), EXTRACTION_CHUNK):
            chunk = image_names[first : first + EXTRACTION_CHUNK]
            pycolmap.extract_features(
                database, image_dir, image_names=chunk, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader
            )
            bar.update(len(chunk))
    seconds["features"] = time.perf_counter() - start
    start = time.perf_counter()
    match(database, matcher)
    seconds["matching"] = time.perf_counter() - start
    return seconds


def add_lenses(
    database: Path,
    image_dir: Path,
    image_names: list[str],
    camera_model: str,
    lenses: Sequence[Lens],
    reader: pycolmap.ImageReaderOptions,
) -> None:
    """Import the frames lens by lens: each import makes one camera (and its rig), given the lens's focal prior.

    The frames are numbered in name order within a lens first: extraction's threads would number them in the order
    they finish, and matching and mapping follow the numbers, so that the same frames could give other poses."""
    for lens in lenses:
        frames = sorted(name for name in image_names if lens.frames is None or name in lens.frames)
        if not frames:  # a subset of the capture without this lens's frames
            continue
        pycolmap.import_images(database, image_dir, pycolmap.CameraMode.SINGLE, frames, reader)
        db = pycolmap.Database.open(database)
        try:
            added = max(db.read_all_cameras(), key=lambda camera: camera.camera_id)
            db.update_camera(_with_model(added, camera_model, lens.focal_prior_px))
        finally:
            db.close()


def match(database: Path, matcher: str) -> None:
    """Verified matches between frame pairs: neighbours in sequence order, or every pair (pairs already matched are
    kept, so exhaustive after sequential only adds the missing ones)."""
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = 0  # seeded RANSAC: the same frames give the same dataset
    matching = pycolmap.FeatureMatchingOptions(num_threads=SFM_THREADS)
    with tqdm(total=1, desc=f"matching ({matcher})", unit="stage") as bar:
        run = pycolmap.match_sequential if matcher == "sequential" else pycolmap.match_exhaustive
        run(database, matching_options=matching, verification_options=verification)
        bar.update()


def map_frames(
    database: Path,
    image_dir: Path,
    out: Path,
    image_names: list[str],
    camera_model: str,
    setting: MapperSetting = MapperSetting(),
    label: str = "",
) -> Reconstruction:
    """Map the database's matches with `setting`, every camera set to `camera_model`; the largest reconstruction,
    timed."""
    start = time.perf_counter()
    set_camera_model(database, camera_model)
    out.mkdir(parents=True, exist_ok=True)
    label = label or f"{setting.mapper} mapping ({camera_model})"
    if setting.mapper == "global":
        options = pycolmap.GlobalPipelineOptions(random_seed=0, num_threads=SFM_THREADS)
        options.min_model_size = _min_model_size(image_names)
        with tqdm(total=1, desc=label, unit="stage") as bar:
            models = pycolmap.global_mapping(database, image_dir, out, options)
            bar.update()
    else:
        options = _incremental_options(setting)
        options.min_model_size = _min_model_size(image_names)
        with tqdm(total=len(image_names), desc=label, unit="frame") as bar:
            # COLMAP can call back more often than there are frames (61 times for 60 once): the bar stops at their count
            next_image = lambda: bar.update() if bar.n < bar.total else None  # noqa: E731
            models = pycolmap.incremental_mapping(database, image_dir, out, options, next_image_callback=next_image)
    largest = max(models.values(), key=lambda m: m.num_reg_images(), default=None)
    if largest is None:
        empty = np.zeros((0, 3))
        result = Reconstruction(image_names, {}, {}, empty, empty.astype(np.uint8), float("nan"))
    else:
        result = _convert(largest, image_names, {})
    result.camera_model, result.mapper = camera_model, setting.mapper
    result.seconds = {"mapping": time.perf_counter() - start}
    return result


def _min_model_size(image_names: list[str]) -> int:
    """COLMAP drops models under 10 frames; a capture (or a trial's subset) of fewer frames keeps any of 2 or more."""
    return max(2, min(10, len(image_names)))


def _incremental_options(setting: MapperSetting) -> pycolmap.IncrementalPipelineOptions:
    options = pycolmap.IncrementalPipelineOptions(random_seed=0, num_threads=SFM_THREADS)
    if setting.max_seconds is not None:
        options.max_runtime_seconds = max(int(setting.max_seconds), 1)
    if setting.relaxed:  # half COLMAP's evidence thresholds: starts and grows on weaker geometry
        options.mapper.init_min_num_inliers = 50
        options.mapper.init_min_tri_angle = 8.0
        options.mapper.abs_pose_min_num_inliers = 15
        options.mapper.abs_pose_min_inlier_ratio = 0.15
        options.triangulation.min_angle = 0.75
        options.mapper.filter_min_tri_angle = 0.75
    return options


def set_camera_model(database: Path, camera_model: str) -> None:
    """Give every camera `camera_model`, starting from its focal prior or the same guess as before (features and
    matches do not depend on the model)."""
    db = pycolmap.Database.open(database)
    try:
        for camera in db.read_all_cameras():
            prior = camera.mean_focal_length() if camera.has_prior_focal_length else None
            db.update_camera(_with_model(camera, camera_model, prior))
    finally:
        db.close()


def _with_model(camera: pycolmap.Camera, camera_model: str, focal_prior_px: float | None) -> pycolmap.Camera:
    """`camera` as `camera_model`, starting from the prior where known, else from its current focal length."""
    focal = focal_prior_px or camera.mean_focal_length()
    other = pycolmap.Camera.create_from_model_name(camera.camera_id, camera_model, focal, camera.width, camera.height)
    other.has_prior_focal_length = focal_prior_px is not None
    return other


def _convert(model: pycolmap.Reconstruction, image_names: list[str], seconds: dict) -> Reconstruction:
    poses, camera_of = {}, {}
    for image in model.images.values():
        if image.has_pose:
            cam_from_world = np.vstack([image.cam_from_world().matrix(), [0.0, 0.0, 0.0, 1.0]])
            poses[image.name] = np.linalg.inv(cam_from_world) @ OPENCV_TO_OPENGL
            camera_of[image.name] = image.camera_id
    by_camera = {camera_id: intrinsics(camera) for camera_id, camera in model.cameras.items()}
    ids = list(camera_of.values())
    main = max(set(ids), key=lambda camera_id: (ids.count(camera_id), -camera_id), default=next(iter(by_camera)))
    frame_cameras = {name: by_camera[c] for name, c in camera_of.items()} if len(set(ids)) > 1 else {}
    points = model.points3D.values()
    xyz = np.array([p.xyz for p in points]).reshape(-1, 3)
    rgb = np.array([p.color for p in points], dtype=np.uint8).reshape(-1, 3)
    error = float(model.compute_mean_reprojection_error())
    return Reconstruction(
        image_names, poses, by_camera[main], xyz, rgb, error, seconds, model, frame_cameras=frame_cameras
    )


def intrinsics(camera: pycolmap.Camera) -> dict:
    """COLMAP camera parameters as nerfstudio's OPENCV intrinsics (unused distortion terms are zero)."""
    p = list(camera.params)
    model = camera.model.name
    fx, fy, cx, cy, k1, k2, p1, p2 = {
        "SIMPLE_PINHOLE": lambda: (p[0], p[0], p[1], p[2], 0, 0, 0, 0),
        "PINHOLE": lambda: (p[0], p[1], p[2], p[3], 0, 0, 0, 0),
        "SIMPLE_RADIAL": lambda: (p[0], p[0], p[1], p[2], p[3], 0, 0, 0),
        "RADIAL": lambda: (p[0], p[0], p[1], p[2], p[3], p[4], 0, 0),
        "OPENCV": lambda: tuple(p[:8]),
    }[model]()
    values = dict(fl_x=fx, fl_y=fy, cx=cx, cy=cy, k1=k1, k2=k2, p1=p1, p2=p2)
    return {"camera_model": "OPENCV", "w": camera.width, "h": camera.height, **{k: float(v) for k, v in values.items()}}
