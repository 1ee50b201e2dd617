"""The embedded synthetic scene: an ID card on a table, ray-traced analytically with numpy.

It stands in for a phone video of a document: a handheld-like arc of cameras looks at the card, the card lies on a
textured table next to a book and a mug (so that the scene has depth, not only a plane), and every quantity a real
capture lacks is known exactly: the camera poses, a segmentation mask of the card per frame, and the card's centre
(the point of interest). Shading is Lambertian and the same from every view, so a NeRF can fit it.

Units are decimetres: the card is an ISO/IEC 7810 ID-1 card (85.6 x 54 mm), lying at the origin with its normal +z.
Cameras use nerfstudio's convention (OpenGL: x right, y up, looking down -z), world z is up.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from nerftune.data.card_text import CARD_TEXT, ink
from nerftune.data.document_region import corners_json
from nerftune.data.poi import Crop
from nerftune.paths import look_at

CARD_WIDTH, CARD_HEIGHT, CARD_THICKNESS, CARD_CORNER = 0.856, 0.54, 0.008, 0.03
POINT_OF_INTEREST = (0.0, 0.0, CARD_THICKNESS)
DOCUMENT_NORMAL = (0.0, 0.0, 1.0)
BOOK_MIN, BOOK_MAX = np.array([-1.55, -0.2, 0.0]), np.array([-0.85, 0.75, 0.22])
MUG_CENTRE, MUG_RADIUS, MUG_HEIGHT = np.array([0.95, 0.45]), 0.2, 0.45
LIGHT = np.array([0.35, -0.45, 0.82]) / np.linalg.norm([0.35, -0.45, 0.82])
CROP_MARGIN = 0.02  # 2 mm above the card: its print stays, the book and the mug go
SUPERSAMPLING = 2  # per axis: anti-aliases the texture edges so that images are band-limited like a real camera's


@dataclass(frozen=True)
class SceneOptions:
    """What to render: image size, number of frames along the arc, and the arc itself (degrees, decimetres)."""

    frames: int = 48
    width: int = 160
    height: int = 120
    fov_y_deg: float = 50.0
    azimuth_range_deg: float = 140.0
    elevation_deg: tuple[float, float] = (40.0, 62.0)
    distance: float = 2.2
    # "low": a plain table and the card's plain back, as on a hard real capture; "text": the card's lines are real
    # text (`card_text.py`), for OCR
    texture: str = "rich"

    def name(self) -> str:
        """The folder name: size and frames, and a hash of the other options where they are not the defaults."""
        name = f"id-card-{self.width}x{self.height}-{self.frames}f"
        path = {k: v for k, v in asdict(self).items() if k not in ("frames", "width", "height")}
        default = {k: v for k, v in asdict(SceneOptions()).items() if k in path}
        if path != default:
            name += "-" + hashlib.sha256(json.dumps(path, sort_keys=True).encode()).hexdigest()[:8]
        return name


def camera_poses(options: SceneOptions) -> np.ndarray:
    """Camera-to-world matrices (N, 4, 4) along a handheld-like arc that keeps the card in view."""
    poses = []
    for k in range(options.frames):
        s = k / max(options.frames - 1, 1)
        azimuth = math.radians(-options.azimuth_range_deg / 2 + options.azimuth_range_deg * s)
        low, high = options.elevation_deg
        elevation = math.radians(low + (high - low) * (0.5 - 0.5 * math.cos(2 * math.pi * s)))
        distance = options.distance * (1.0 + 0.08 * math.sin(3 * math.pi * s))
        centre = np.array(POINT_OF_INTEREST) + distance * np.array(
            [math.sin(azimuth) * math.cos(elevation), -math.cos(azimuth) * math.cos(elevation), math.sin(elevation)]
        )
        wobble = 0.06 * np.array([math.sin(5.0 * s), math.cos(4.0 * s), 0.0])  # a hand does not aim perfectly
        poses.append(look_at(centre, np.array(POINT_OF_INTEREST) + wobble, np.array([0.0, 0.0, 1.0])))
    return np.stack(poses)


def intrinsics(options: SceneOptions) -> dict[str, float]:
    focal = 0.5 * options.height / math.tan(math.radians(options.fov_y_deg) / 2)
    return {"fl_x": focal, "fl_y": focal, "cx": options.width / 2, "cy": options.height / 2}


def render_view(pose: np.ndarray, options: SceneOptions) -> tuple[np.ndarray, np.ndarray]:
    """Render one view: (H, W, 3) uint8 colours and an (H, W) bool mask of the card."""
    k = intrinsics(options)
    ss = SUPERSAMPLING
    offsets = (np.arange(ss) + 0.5) / ss
    xs = (np.arange(options.width)[:, None] + offsets[None, :]).reshape(-1)
    ys = (np.arange(options.height)[:, None] + offsets[None, :]).reshape(-1)
    px, py = np.meshgrid(xs, ys)
    dirs_cam = np.stack([(px - k["cx"]) / k["fl_x"], -(py - k["cy"]) / k["fl_y"], -np.ones_like(px)], axis=-1)
    dirs = dirs_cam @ pose[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    colour, is_card = trace(np.broadcast_to(pose[:3, 3], dirs.shape), dirs, options.texture)
    shape = (options.height, ss, options.width, ss)
    image = colour.reshape(*shape, 3).mean(axis=(1, 3))
    mask = is_card.reshape(shape).mean(axis=(1, 3)) >= 0.5
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), mask


def trace(origins: np.ndarray, dirs: np.ndarray, texture: str = "rich") -> tuple[np.ndarray, np.ndarray]:
    """Nearest-hit colours of rays against the table, card, book and mug (`texture` "low": plain table, card back)."""
    inf = np.full(dirs.shape[:-1], np.inf)
    t_table = np.where(dirs[..., 2] < -1e-9, -origins[..., 2] / np.minimum(dirs[..., 2], -1e-9), inf)
    t_card = _hit_card(origins, dirs, inf)
    t_book, n_book = _hit_box(origins, dirs, BOOK_MIN, BOOK_MAX, inf)
    t_mug, n_mug = _hit_mug(origins, dirs, inf)
    hits = np.stack([t_table, t_card, t_book, t_mug])
    nearest = np.argmin(hits, axis=0)
    t = np.min(hits, axis=0)
    points = origins + dirs * np.where(np.isfinite(t), t, 0.0)[..., None]

    colour = np.empty(dirs.shape)
    colour[:] = _sky(dirs)
    up = np.array([0.0, 0.0, 1.0])
    plain = texture == "low"
    for index, albedo, normals in (
        (0, _plain_table if plain else _table_texture, up),
        (1, _card_back if plain else partial(_card_texture, text=texture == "text"), up),
        (2, _book_texture, n_book),
        (3, _mug_texture, n_mug),
    ):
        sel = (nearest == index) & np.isfinite(t)
        if not sel.any():
            continue
        normal = normals[sel] if isinstance(normals, np.ndarray) and normals.ndim > 1 else up
        shade = 0.35 + 0.65 * np.clip(np.sum(normal * LIGHT, axis=-1), 0.0, 1.0)
        colour[sel] = albedo(points[sel]) * np.atleast_1d(shade)[..., None]
    return colour, (nearest == 1) & np.isfinite(t)


def _hit_card(origins: np.ndarray, dirs: np.ndarray, inf: np.ndarray) -> np.ndarray:
    t = np.where(dirs[..., 2] < -1e-9, (CARD_THICKNESS - origins[..., 2]) / np.minimum(dirs[..., 2], -1e-9), inf)
    p = origins + dirs * np.where(np.isfinite(t), t, 0.0)[..., None]
    # a rounded rectangle: distance to the inner rectangle shrunk by the corner radius
    qx = np.maximum(np.abs(p[..., 0]) - (CARD_WIDTH / 2 - CARD_CORNER), 0.0)
    qy = np.maximum(np.abs(p[..., 1]) - (CARD_HEIGHT / 2 - CARD_CORNER), 0.0)
    inside = qx**2 + qy**2 <= CARD_CORNER**2
    return np.where(inside, t, inf)


def _hit_box(origins, dirs, lo, hi, inf):
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - origins) / dirs
        t2 = (hi - origins) / dirs
    t_near = np.nanmax(np.minimum(t1, t2), axis=-1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=-1)
    hit = (t_near <= t_far) & (t_near > 0)
    axis = np.nanargmax(np.minimum(t1, t2), axis=-1)
    normals = np.zeros(dirs.shape)
    np.put_along_axis(normals, axis[..., None], -np.sign(np.take_along_axis(dirs, axis[..., None], -1)), -1)
    return np.where(hit, t_near, inf), normals


def _hit_mug(origins, dirs, inf):
    o = origins[..., :2] - MUG_CENTRE
    d = dirs[..., :2]
    a = np.sum(d * d, axis=-1)
    b = 2 * np.sum(o * d, axis=-1)
    c = np.sum(o * o, axis=-1) - MUG_RADIUS**2
    disc = b * b - 4 * a * c
    root = np.sqrt(np.maximum(disc, 0.0))
    t_side = (-b - root) / np.maximum(2 * a, 1e-12)
    z_side = origins[..., 2] + t_side * dirs[..., 2]
    side = (disc > 0) & (t_side > 0) & (z_side >= 0) & (z_side <= MUG_HEIGHT)
    t_top = np.where(dirs[..., 2] < -1e-9, (MUG_HEIGHT - origins[..., 2]) / np.minimum(dirs[..., 2], -1e-9), -1.0)
    top_xy = o + d * t_top[..., None]
    top = (t_top > 0) & (np.sum(top_xy**2, axis=-1) <= MUG_RADIUS**2)
    t = np.where(top, t_top, np.where(side, t_side, inf))
    normals = np.zeros(dirs.shape)
    side_xy = (o + d * t_side[..., None]) / MUG_RADIUS
    normals[..., :2] = np.where(top[..., None], 0.0, side_xy)
    normals[..., 2] = np.where(top, 1.0, 0.0)
    return t, normals


def _sky(dirs):
    mix = np.clip(dirs[..., 2:3], 0.0, 1.0)
    return (1 - mix) * np.array([0.85, 0.88, 0.92]) + mix * np.array([0.55, 0.68, 0.9])


def _table_texture(p):
    # wood planks along x with grain: smooth enough to learn, busy enough for features
    plank = np.floor(p[:, 1] / 0.45)
    grain = 0.5 + 0.5 * np.sin(9.0 * p[:, 0] + 2.5 * np.sin(3.1 * p[:, 1] + plank) + 1.7 * plank)
    base = np.array([0.55, 0.36, 0.2]) * (0.85 + 0.15 * np.sin(plank * 2.3))[:, None]
    checker = ((np.floor(p[:, 0] / 0.3) + np.floor(p[:, 1] / 0.3)) % 2)[:, None]
    return base * (0.8 + 0.2 * grain[:, None]) * (0.92 + 0.08 * checker)


def _plain_table(p):
    return np.tile(np.array([0.9, 0.89, 0.86]), (len(p), 1))


def _card_back(p):
    # the back of an ID card: plain, with a signature strip and a small printed block; little for SIFT to find
    u = p[:, 0] / CARD_WIDTH + 0.5
    v = p[:, 1] / CARD_HEIGHT + 0.5
    colour = np.tile(np.array([0.92, 0.93, 0.95]), (len(p), 1))
    colour[(v > 0.62) & (v < 0.78) & (u > 0.08) & (u < 0.7)] = np.array([0.97, 0.97, 0.97])
    colour[(v > 0.15) & (v < 0.3) & (u > 0.08) & (u < 0.5)] = np.array([0.45, 0.45, 0.5])
    return colour


def _card_texture(p, text: bool = False):
    u = p[:, 0] / CARD_WIDTH + 0.5  # 0..1 left to right
    v = p[:, 1] / CARD_HEIGHT + 0.5  # 0..1 bottom to top
    colour = np.empty((len(p), 3))
    colour[:] = np.array([0.78, 0.86, 0.93])
    guilloche = 0.04 * np.sin(38 * u + 6 * np.sin(21 * v))[:, None]
    colour = colour + guilloche
    header = v > 0.82
    colour[header] = np.array([0.12, 0.3, 0.62])
    photo = (u > 0.05) & (u < 0.33) & (v > 0.12) & (v < 0.76)
    colour[photo] = np.array([0.35, 0.38, 0.45])
    face = photo & (((u - 0.19) / 0.08) ** 2 + ((v - 0.5) / 0.16) ** 2 < 1.0)
    colour[face] = np.array([0.86, 0.68, 0.55])
    if text:
        colour[ink(u, v, CARD_WIDTH / CARD_HEIGHT) & ~photo] = np.array([0.1, 0.1, 0.14])
    for row, length in enumerate(() if text else (0.5, 0.38, 0.45, 0.3, 0.42)):  # lines of dashes, like text
        line_v = 0.7 - 0.12 * row
        line = (u > 0.4) & (u < 0.4 + length) & (np.abs(v - line_v) < 0.025)
        dashes = np.sin(u * 140 + row) > -0.6  # gaps between "words"
        colour[line & dashes] = np.array([0.1, 0.1, 0.14])
    chip = (u > 0.82) & (u < 0.94) & (v > 0.1) & (v < 0.3) & (not text)  # where the text card prints its date
    colour[chip] = np.array([0.83, 0.7, 0.3])
    return np.clip(colour, 0, 1)


def _book_texture(p):
    cover = np.array([0.62, 0.12, 0.14])
    stripe = (np.abs(p[:, 1] - 0.55) < 0.05) | (np.abs(p[:, 2] - 0.11) < 0.03)
    colour = np.tile(cover, (len(p), 1))
    colour[stripe] = np.array([0.92, 0.85, 0.5])
    return colour


def _mug_texture(p):
    angle = np.arctan2(p[:, 1] - MUG_CENTRE[1], p[:, 0] - MUG_CENTRE[0])
    bands = (np.sin(6 * angle) > 0.3)[:, None]
    return np.where(bands, np.array([0.2, 0.55, 0.35]), np.array([0.93, 0.93, 0.9]))


def write_scene(out_dir: Path, options: SceneOptions = SceneOptions()) -> Path:
    """Render the scene into a nerfstudio dataset folder (images/, masks/, segmentation/ (the card cut out, the rest
    black), transforms.json); returns the folder.

    An existing complete folder for the same options is reused: generation is deterministic.
    """
    out_dir = Path(out_dir)
    transforms_path = out_dir / "transforms.json"
    if transforms_path.exists():
        return out_dir
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    (out_dir / "segmentation").mkdir(parents=True, exist_ok=True)
    frames = []
    for index, pose in enumerate(camera_poses(options)):
        image, mask = render_view(pose, options)
        name = f"frame_{index:05d}.png"
        Image.fromarray(image).save(out_dir / "images" / name)
        Image.fromarray((mask * 255).astype(np.uint8)).save(out_dir / "masks" / name)
        Image.fromarray(image * mask[..., None].astype(np.uint8)).save(out_dir / "segmentation" / name)
        frames.append(
            {
                "file_path": f"images/{name}",
                "document_mask_path": f"masks/{name}",
                "segmentation_path": f"segmentation/{name}",
                "transform_matrix": pose.tolist(),
            }
        )
    transforms = {
        "camera_model": "OPENCV",
        "w": options.width,
        "h": options.height,
        **intrinsics(options),
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        "frames": frames,
        "nerftune": {
            "source": "synthetic:id-card",
            "scene": asdict(options),
            "point_of_interest": list(POINT_OF_INTEREST),
            "document_normal": list(DOCUMENT_NORMAL),
            "document_size": [CARD_WIDTH, CARD_HEIGHT],
            **({"document_text": list(CARD_TEXT)} if options.texture == "text" else {}),
            "document_corners": corners_json(np.array(POINT_OF_INTEREST), np.eye(3)[:2], (CARD_WIDTH, CARD_HEIGHT)),
            "crop": Crop(np.array(POINT_OF_INTEREST), np.array(DOCUMENT_NORMAL), CROP_MARGIN).to_json(),
        },
    }
    # written last, atomically: its presence marks a complete scene
    tmp = transforms_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(transforms, indent=2))
    tmp.replace(transforms_path)
    return out_dir
