"""Structure from motion with pycolmap: SIFT features (masked), sequential or exhaustive matching, and incremental
or global mapping of the matches.

All frames share one camera (a phone video is one lens). The largest reconstruction wins; its poses and points are
returned in COLMAP's world frame with OpenGL camera-to-world matrices, nerfstudio's convention. Which camera model,
mapper and settings to trust is decided in `sfm_choice`; this module only runs them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

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
        """The sparse points as a binary PLY with colours (COLMAP's exporter; nerfstudio reads it as `ply_file_path`)."""
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
class CameraSetting:
    """The shared camera a mapping starts from: its COLMAP model, and a known focal length (pixels) if any."""

    model: str
    focal_prior_px: float | None = None


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
    camera: CameraSetting,
    mask_dir: Path | None = None,
) -> dict[str, float]:
    """SIFT features of every frame (one shared camera) and verified matches, into `database`; returns seconds."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    reader = pycolmap.ImageReaderOptions(camera_model=camera.model)
    if mask_dir is not None:
        reader.mask_path = str(mask_dir)
    # The frames are numbered in name order first: extraction's threads would number them in the order they finish,
    # and matching and mapping follow the numbers, so that the same frames could give other poses from run to run.
    pycolmap.Database.open(database).close()  # creates the file, which import_images needs
    pycolmap.import_images(database, image_dir, pycolmap.CameraMode.SINGLE, sorted(image_names), reader)
    # in chunks so that the progress bar moves (a chunk keeps every core busy)
    with tqdm(total=len(image_names), desc="features", unit="frame") as bar:
        for first in range(0, len(image_names), EXTRACTION_CHUNK):
            chunk = image_names[first : first + EXTRACTION_CHUNK]
            pycolmap.extract_features(
                database, image_dir, image_names=chunk, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader
            )
            bar.update(len(chunk))
    set_camera(database, camera)
    seconds["features"] = time.perf_counter() - start
    start = time.perf_counter()
    match(database, matcher)
    seconds["matching"] = time.perf_counter() - start
    return seconds


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
    camera: CameraSetting,
    setting: MapperSetting = MapperSetting(),
    label: str = "",
) -> Reconstruction:
    """Map the database's matches with `setting`, the camera set to `camera`; the largest reconstruction, timed."""
    start = time.perf_counter()
    set_camera(database, camera)
    out.mkdir(parents=True, exist_ok=True)
    label = label or f"{setting.mapper} mapping ({camera.model})"
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
            models = pycolmap.incremental_mapping(database, image_dir, out, options, next_image_callback=bar.update)
    largest = max(models.values(), key=lambda m: m.num_reg_images(), default=None)
    if largest is None:
        empty = np.zeros((0, 3))
        result = Reconstruction(image_names, {}, {}, empty, empty.astype(np.uint8), float("nan"))
    else:
        result = _convert(largest, image_names, {})
    result.camera_model, result.mapper = camera.model, setting.mapper
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


def set_camera(database: Path, camera: CameraSetting) -> None:
    """Give the frames' one camera `camera.model`, starting from the focal prior, else from the same guess as
    before (features and matches do not depend on the model)."""
    db = pycolmap.Database.open(database)
    try:
        current = db.read_all_cameras()[0]
        focal = camera.focal_prior_px or current.mean_focal_length()
        other = pycolmap.Camera.create_from_model_name(
            current.camera_id, camera.model, focal, current.width, current.height
        )
        other.has_prior_focal_length = camera.focal_prior_px is not None
        db.update_camera(other)
    finally:
        db.close()


def _convert(model: pycolmap.Reconstruction, image_names: list[str], seconds: dict) -> Reconstruction:
    poses = {}
    for image in model.images.values():
        if image.has_pose:
            cam_from_world = np.vstack([image.cam_from_world().matrix(), [0.0, 0.0, 0.0, 1.0]])
            poses[image.name] = np.linalg.inv(cam_from_world) @ OPENCV_TO_OPENGL
    camera = next(iter(model.cameras.values()))
    points = model.points3D.values()
    xyz = np.array([p.xyz for p in points]).reshape(-1, 3)
    rgb = np.array([p.color for p in points], dtype=np.uint8).reshape(-1, 3)
    error = float(model.compute_mean_reprojection_error())
    return Reconstruction(image_names, poses, intrinsics(camera), xyz, rgb, error, seconds, model)


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
