"""What `nerftune prepare` writes into the dataset folder: the frames (and masks) as they are read, and
`transforms.json` in nerfstudio's convention."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from nerftune.data.capture import Frame
from nerftune.data.sfm import Reconstruction
from nerftune.errors import InputError

PLY_FILE = "sparse_pc.ply"


def write_frames(frames: Iterable[Frame], count: int, out: Path, source: Path) -> dict[str, str]:
    """Write the frames (and masks) as they are read; returns {frame name: what the user knows it as}."""
    (out / "images").mkdir()
    sources: dict[str, str] = {}
    size = None
    for k, frame in enumerate(tqdm(frames, total=count, desc="frames", unit="frame")):
        size = size or frame.image.size
        if frame.image.size != size:
            raise InputError(
                source,
                "INPUT",
                f"{frame.source} is {frame.image.size[0]}x{frame.image.size[1]} px as written, the first frame "
                f"{size[0]}x{size[1]}",
                "give frames of one shape: photos of one orientation and aspect ratio (--max-size makes sizes equal)",
            )
        name = f"frame_{k:05d}.png"
        frame.image.save(out / "images" / name)
        if frame.mask is not None:
            for folder, mask_name in (("masks", name), ("colmap/masks", f"{name}.png")):  # COLMAP's naming rule
                (out / folder).mkdir(parents=True, exist_ok=True)
                frame.mask.save(out / folder / mask_name)
        sources[name] = frame.source
    return sources


def write_transforms(out: Path, model: Reconstruction, document: dict, masked: bool, source: Path) -> None:
    """`transforms.json`: the registered frames' poses (and masks), the intrinsics and the document."""
    frames = []
    for name in model.registered:
        frame = {"file_path": f"images/{name}", "transform_matrix": model.poses[name].tolist()}
        frame.update({k: v for k, v in model.frame_cameras.get(name, {}).items() if k != "camera_model"})
        if masked:
            frame["mask_path"] = f"masks/{name}"
        frames.append(frame)
    # several lenses: intrinsics per frame, as nerfstudio reads them where the file has no shared ones
    shared = {"camera_model": model.camera["camera_model"]} if model.frame_cameras else model.camera
    transforms = {
        **shared,
        "frames": frames,
        "ply_file_path": PLY_FILE,
        "nerftune": {"source": f"prepare:{source.name}", **document},
    }
    (out / "transforms.json").write_text(json.dumps(transforms, indent=2))
