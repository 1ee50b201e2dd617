"""Structure from motion with pycolmap: SIFT features (masked), sequential or exhaustive matching, incremental mapping.

All frames share one camera (a phone video is one lens). The largest reconstruction wins; its poses and points are
returned in COLMAP's world frame with OpenGL camera-to-world matrices, nerfstudio's convention.

The camera model is chosen by evidence (`auto`): mapping starts with SIMPLE_RADIAL (focal length, principal point,
one radial term), which registers frames where OPENCV's eight parameters overfit a weak capture (3 against 20 of 40
frames on a real low-texture one), and OPENCV is mapped too, on the same matches, and kept only where it registers
every frame the simpler model did and lowers the reprojection error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pycolmap
from tqdm import tqdm

MATCHERS = ("sequential", "exhaustive")
CAMERA_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")
AUTO_MODELS = ("SIMPLE_RADIAL", "OPENCV")  # the models `auto` maps, fewest parameters first
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])  # camera axes: y down / z forward -> y up / z backward
EXTRACTION_CHUNK = 8
pycolmap.logging.minloglevel = 2  # COLMAP's per-image log lines would drown the progress bars


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
    attempts: list[dict] = field(default_factory=list)  # each model mapped: frames registered, error, seconds

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


def reconstruct(
    image_dir: Path,
    image_names: list[str],
    work_dir: Path,
    matcher: str = "sequential",
    camera_model: str = "auto",
    mask_dir: Path | None = None,
) -> Reconstruction:
    """Run the three SfM stages on `image_dir` (masks in `mask_dir` named `<image name>.png`), timing each; with
    `camera_model="auto"`, map with each of `AUTO_MODELS` and keep what `choose_camera_model` says."""
    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "database.db"
    seconds: dict[str, float] = {}
    models = AUTO_MODELS if camera_model == "auto" else (camera_model,)

    start = time.perf_counter()
    reader = pycolmap.ImageReaderOptions(camera_model=models[0])
    if mask_dir is not None:
        reader.mask_path = str(mask_dir)
    # in chunks so that the progress bar moves (a chunk keeps every core busy); later chunks join the first's camera
    with tqdm(total=len(image_names), desc="features", unit="frame") as bar:
        for first in range(0, len(image_names), EXTRACTION_CHUNK):
            chunk = image_names[first : first + EXTRACTION_CHUNK]
            pycolmap.extract_features(
                database, image_dir, image_names=chunk, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader
            )
            reader.existing_camera_id = _only_camera_id(database)
            bar.update(len(chunk))
    seconds["features"] = time.perf_counter() - start

    start = time.perf_counter()
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = 0  # seeded RANSAC: the same frames give the same dataset
    with tqdm(total=1, desc=f"matching ({matcher})", unit="stage") as bar:
        match = pycolmap.match_sequential if matcher == "sequential" else pycolmap.match_exhaustive
        match(database, verification_options=verification)
        bar.update()
    seconds["matching"] = time.perf_counter() - start

    results = []
    for model in models:
        start = time.perf_counter()
        _set_camera_model(database, model)
        result = _map(database, image_dir, work_dir / "sparse" / model, image_names, model)
        result.attempts = [
            {
                "camera_model": model,
                "frames_registered": len(result.registered),
                "mean_reprojection_error_px": result.mean_reprojection_error,
                "seconds": round(time.perf_counter() - start, 3),
            }
        ]
        results.append(result)
    chosen = results[choose_camera_model([r.attempts[0] for r in results])]
    chosen.attempts = [r.attempts[0] for r in results]
    chosen.seconds = {**seconds, "mapping": sum(a["seconds"] for a in chosen.attempts)}
    return chosen


def choose_camera_model(attempts: list[dict]) -> int:
    """Which attempt to keep (they come fewest parameters first): a richer model only where it registers every
    frame the kept one did, or more, and lowers the mean reprojection error."""
    kept = 0
    for index, attempt in enumerate(attempts[1:], 1):
        registers_as_many = attempt["frames_registered"] >= attempts[kept]["frames_registered"] > 0
        if registers_as_many and attempt["mean_reprojection_error_px"] < attempts[kept]["mean_reprojection_error_px"]:
            kept = index
    return kept


def _map(database: Path, image_dir: Path, out: Path, image_names: list[str], camera_model: str) -> Reconstruction:
    options = pycolmap.IncrementalPipelineOptions(random_seed=0, num_threads=-1)
    out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(image_names), desc=f"mapping ({camera_model})", unit="frame") as bar:
        models = pycolmap.incremental_mapping(database, image_dir, out, options, next_image_callback=bar.update)
    largest = max(models.values(), key=lambda m: m.num_reg_images(), default=None)
    if largest is None:
        empty = np.zeros((0, 3))
        return Reconstruction(
            image_names, {}, {}, empty, empty.astype(np.uint8), float("nan"), camera_model=camera_model
        )
    result = _convert(largest, image_names, {})
    result.camera_model = camera_model
    return result


def _set_camera_model(database: Path, camera_model: str) -> None:
    """Give the frames' one camera another model, starting from the same focal length guess (features and matches
    do not depend on it)."""
    db = pycolmap.Database.open(database)
    try:
        camera = db.read_all_cameras()[0]
        if camera.model_name == camera_model:
            return
        other = pycolmap.Camera.create_from_model_name(
            camera.camera_id, camera_model, camera.mean_focal_length(), camera.width, camera.height
        )
        other.has_prior_focal_length = camera.has_prior_focal_length
        db.update_camera(other)
    finally:
        db.close()


def _only_camera_id(database: Path) -> int:
    db = pycolmap.Database.open(database)
    try:
        return db.read_all_cameras()[0].camera_id
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
