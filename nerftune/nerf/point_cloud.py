"""A trained trial's point cloud, by nerfstudio's own exporter (`ns-export pointcloud`'s), cut to the data's
document crop (`nerftune prepare` and the synthetic scene record it) and written in the dataset's frame."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from nerftune.data.poi import Crop
from nerftune.errors import InputError
from nerftune.nerf.loop import NerfTrainer
from nerftune.nerf.render import crop_box, dataset_to_model

POINT_CLOUD_FILE = "point_cloud.ply"  # as ns-export names it
SUMMARY_FILE = "export.json"
RAYS_PER_BATCH = 32768  # ns-export's: sampling rays in large batches is faster


def export_point_cloud(trainer: NerfTrainer, view_dir: Path, out: Path, crop: bool, num_points: int) -> dict:
    """Write `point_cloud.ply` and `export.json` (points, whether cropped, seconds) into `out`; returns the latter."""
    import open3d as o3d
    from nerfstudio.exporter.exporter_utils import generate_point_cloud

    transform, scale = dataset_to_model(trainer)
    recorded = json.loads((Path(view_dir) / "transforms.json").read_text()).get("nerftune", {}).get("crop")
    box = crop_box(Crop.from_json(recorded), transform, scale) if crop and recorded else None
    start = time.perf_counter()
    trainer.pipeline.eval()
    trainer.pipeline.datamanager.train_pixel_sampler.num_rays_per_batch = RAYS_PER_BATCH
    try:
        cloud = generate_point_cloud(trainer.pipeline, num_points=num_points, remove_outliers=True, crop_obb=box)
    except SystemExit:  # nerfstudio's exporter exits where the model has no `rgb` or `depth` output
        method = trainer.config.method_name
        raise InputError(
            view_dir.parent,
            "--pointcloud",
            f"{method} renders no rgb and depth for nerfstudio's point-cloud exporter",
            "export a trial of the nerfacto family",
        ) from None
    # model = scale * (R @ dataset + t): back to the dataset's frame, where the crop and the poses are
    points = (np.asarray(cloud.points) / scale - transform[:, 3]) @ transform[:, :3]
    cloud.points = o3d.utility.Vector3dVector(points)
    out.mkdir(parents=True, exist_ok=True)
    o3d.io.write_point_cloud(str(out / POINT_CLOUD_FILE), cloud)
    summary = {
        "kind": "pointcloud",
        "file": POINT_CLOUD_FILE,
        "points": len(points),
        "cropped": box is not None,
        "frame": "dataset",
        "seconds": round(time.perf_counter() - start, 2),
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    return summary
