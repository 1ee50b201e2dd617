"""A trained trial's point cloud or mesh, by nerfstudio's own exporters (`ns-export pointcloud`, `poisson` and
`tsdf`), cut to the data's document crop (`nerftune prepare` and the synthetic scene record it) and written in the
dataset's frame, in the files `ns-export` writes: `point_cloud.ply`; `poisson_mesh.ply` or `tsdf_mesh.ply`, and with
a texture rendered by the NeRF, `mesh.obj` with `material_0.mtl` and `material_0.png`.

nerfstudio's exporters work in the model's frame; nerftune moves what they wrote back into the dataset's frame (where
the poses and the crop are), so that the geometry lies where the captured document lies.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nerftune.errors import InputError
from nerftune.nerf.loop import NerfTrainer
from nerftune.nerf.render import dataset_to_model, model_to_dataset, recorded_crop_box

POINT_CLOUD_FILE = "point_cloud.ply"
MESH_FILE = {"poisson": "poisson_mesh.ply", "tsdf": "tsdf_mesh.ply"}  # as ns-export names them
TEXTURED_FILES = ("mesh.obj", "material_0.mtl", "material_0.png")
RAYS_PER_BATCH = 32768  # ns-export's: sampling rays in large batches is faster
TSDF_RESOLUTION = 128  # ns-export's default volume, per axis
TARGET_FACES = 50_000  # ns-export's: the mesh is decimated to this before texturing


def export_point_cloud(trainer: NerfTrainer, view_dir: Path, out: Path, crop: bool, num_points: int) -> dict:
    """Write `point_cloud.ply` into `out`; returns the summary (export.json)."""
    import open3d as o3d
    from nerfstudio.exporter.exporter_utils import generate_point_cloud

    check_renders_geometry(trainer, view_dir, "--pointcloud")
    box = recorded_crop_box(trainer, view_dir) if crop else None
    start = time.perf_counter()
    next_rays(trainer, RAYS_PER_BATCH)
    with torch.no_grad():
        cloud = generate_point_cloud(trainer.pipeline, num_points=num_points, remove_outliers=True, crop_obb=box)
    points = model_to_dataset(cloud.points, *dataset_to_model(trainer))
    cloud.points = o3d.utility.Vector3dVector(points)
    out.mkdir(parents=True, exist_ok=True)
    o3d.io.write_point_cloud(str(out / POINT_CLOUD_FILE), cloud)
    return {
        "kind": "pointcloud",
        "files": [POINT_CLOUD_FILE],
        "points": len(points),
        "cropped": box is not None,
        "frame": "dataset",
        "seconds": round(time.perf_counter() - start, 2),
    }


def export_mesh(
    trainer: NerfTrainer, view_dir: Path, out: Path, method: str, crop: bool, num_points: int, texture_size: int
) -> dict:
    """Write the mesh (and with `texture_size` > 0 its textured OBJ) into `out`; returns the summary (export.json)."""
    import open3d as o3d

    if method == "marching-cubes":  # nerfstudio's marching cubes reads an SDF field (neus, neus-facto)
        raise InputError(
            view_dir.parent,
            "--mesh",
            f"marching cubes needs an SDF model (neus, neus-facto); {trainer.config.method_name} has a density field",
            "use --mesh tsdf or --mesh poisson",
        )
    check_renders_geometry(trainer, view_dir, "--mesh")
    transform, scale = dataset_to_model(trainer)
    box = recorded_crop_box(trainer, view_dir) if crop else None
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        raw = Path(work) / MESH_FILE[method]
        normals = _poisson(trainer, raw, box, num_points) if method == "poisson" else _tsdf(trainer, raw, box)
        mesh = o3d.io.read_triangle_mesh(str(raw))
        if box is not None:  # the surface spans its points' gaps and the TSDF its volume: cut to the crop exactly
            vertices = torch.tensor(np.asarray(mesh.vertices), dtype=torch.float32)
            mesh.remove_vertices_by_mask(~box.within(vertices).numpy())
        mesh.remove_duplicated_vertices()  # marching cubes writes each edge's vertex once per cell
        mesh.remove_unreferenced_vertices()
        if len(mesh.vertices) == 0:
            raise InputError(view_dir.parent, "--mesh", "the model has no surface in the crop", "train longer")
        o3d.io.write_triangle_mesh(str(raw), mesh)  # the cropped mesh, model frame: what the texture is rendered on
        out.mkdir(parents=True, exist_ok=True)
        files = [MESH_FILE[method]]
        if texture_size > 0:
            _texture(trainer, raw, Path(work), texture_size)
            _write_obj_in_dataset_frame(Path(work) / "mesh.obj", out / "mesh.obj", transform, scale)
            for name in TEXTURED_FILES[1:]:
                shutil.copy(Path(work) / name, out / name)
            files += TEXTURED_FILES
        mesh.vertices = o3d.utility.Vector3dVector(model_to_dataset(np.asarray(mesh.vertices), transform, scale))
        mesh.compute_vertex_normals()
        o3d.io.write_triangle_mesh(str(out / MESH_FILE[method]), mesh)
    return {
        "kind": "mesh",
        "method": method,
        "files": files,
        "vertices": len(mesh.vertices),
        "faces": len(mesh.triangles),
        "normals": normals,
        "cropped": box is not None,
        "frame": "dataset",
        "seconds": round(time.perf_counter() - start, 2),
    }


def check_renders_geometry(trainer: NerfTrainer, view_dir: Path, flag: str) -> None:
    """nerfstudio's exporters read a model's `rgb` and `depth` outputs (vanilla-nerf's are `rgb_fine`, ...)."""
    trainer.pipeline.eval()
    with torch.no_grad():
        outputs = trainer.pipeline.model(next_rays(trainer, 1))
    if "rgb" not in outputs or "depth" not in outputs:
        raise InputError(
            view_dir.parent,
            flag,
            f"{trainer.config.method_name} renders no rgb and depth for nerfstudio's exporters",
            "export a trial of the nerfacto family",
        )


def next_rays(trainer: NerfTrainer, count: int):
    trainer.pipeline.datamanager.train_pixel_sampler.num_rays_per_batch = count
    bundle, _ = trainer.pipeline.datamanager.next_train(0)
    return bundle


def _poisson(trainer: NerfTrainer, path: Path, box, num_points: int) -> str:
    """`ns-export poisson`: a point cloud with normals, Poisson's surface, its sparsest tenth of vertices removed
    and (nerftune's addition) what lies outside the points' bounding box.
    The normals are the model's where it predicts them (nerfacto with `predict_normals`), else estimated by open3d
    from the points and turned towards the cameras (`ns-export poisson --normal-method open3d`)."""
    import open3d as o3d
    from nerfstudio.exporter.exporter_utils import generate_point_cloud

    predicted = getattr(trainer.pipeline.model.config, "predict_normals", False)
    next_rays(trainer, RAYS_PER_BATCH)
    with torch.no_grad():
        cloud = generate_point_cloud(
            trainer.pipeline,
            num_points=num_points,
            remove_outliers=True,
            estimate_normals=not predicted,
            reorient_normals=True,
            normal_output_name="normals" if predicted else None,
            crop_obb=box,
        )
    mesh, densities = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(cloud, depth=9)
    mesh.remove_vertices_by_mask(np.asarray(densities) < np.quantile(densities, 0.1))
    # Poisson closes its surface far beyond the points, where nothing was seen: kept to the points' extent
    mesh = mesh.crop(cloud.get_axis_aligned_bounding_box())
    o3d.io.write_triangle_mesh(str(path), mesh)
    return "the model's" if predicted else "estimated from the points (open3d)"


def _tsdf(trainer: NerfTrainer, path: Path, box) -> str:
    """`ns-export tsdf`: depth renders of the training cameras at half resolution fused in a 128^3 volume over the
    crop's part of the scene box (nerfstudio's [-1, 1]^3), then marching cubes."""
    from nerfstudio.exporter.tsdf_utils import export_tsdf_mesh

    low, high = np.full(3, -1.0), np.full(3, 1.0)
    if box is not None:  # the crop's box is huge, so its corners' extent clipped to the scene box
        corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
        corners = (corners * box.S.numpy()) @ box.R.numpy().T + box.T.numpy()
        low, high = np.maximum(low, corners.min(0)), np.minimum(high, corners.max(0))
    with torch.no_grad():
        export_tsdf_mesh(
            trainer.pipeline,
            path.parent,
            resolution=[TSDF_RESOLUTION] * 3,
            bounding_box_min=tuple(map(float, low)),
            bounding_box_max=tuple(map(float, high)),
        )
    return "from the volume"


def _texture(trainer: NerfTrainer, mesh_path: Path, work: Path, size: int) -> None:
    """nerfstudio's texturing: UVs by xatlas, each texel's colour rendered by the NeRF along the surface normal."""
    from nerfstudio.exporter.exporter_utils import get_mesh_from_filename
    from nerfstudio.exporter.texture_utils import export_textured_mesh

    mesh = get_mesh_from_filename(str(mesh_path), target_num_faces=TARGET_FACES)
    with torch.no_grad():
        export_textured_mesh(mesh, trainer.pipeline, work, px_per_uv_triangle=None, num_pixels_per_side=size)


def _write_obj_in_dataset_frame(source: Path, target: Path, transform: np.ndarray, scale: float) -> None:
    """Copy nerfstudio's OBJ with its vertices (`v`) and normals (`vn`) moved from the model's frame."""
    lines = source.read_text().splitlines()
    rows = {kind: [i for i, line in enumerate(lines) if line.startswith(kind + " ")] for kind in ("v", "vn")}
    read = lambda indices: np.array([[float(x) for x in lines[i].split()[1:4]] for i in indices])  # noqa: E731
    moved = {
        "v": model_to_dataset(read(rows["v"]), transform, scale),
        "vn": read(rows["vn"]) @ transform[:, :3],  # rotated back; a normal does not scale or move
    }
    for kind, values in moved.items():
        for i, value in zip(rows[kind], values):
            lines[i] = f"{kind} {value[0]:.7g} {value[1]:.7g} {value[2]:.7g}"
    target.write_text("\n".join(lines) + "\n")
