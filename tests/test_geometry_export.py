"""`nerftune export TRIAL --pointcloud | --mesh`: nerfstudio's exporters on a trial, cut to the document's crop,
in the dataset's frame, with export.json, and logged to the trial's MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nerftune.data.poi import Crop
from test_novel_views import nerftune_cli


def heights_above_card(points: np.ndarray, scene_dir: Path) -> np.ndarray:
    crop = Crop.from_json(json.loads((scene_dir / "transforms.json").read_text())["nerftune"]["crop"])
    return (np.asarray(points) - crop.point) @ crop.normal


@pytest.mark.slow
def test_point_clouds_and_meshes_are_cut_to_the_crop_and_logged(one_trial, scene_dir, tmp_path, monkeypatch):
    import open3d as o3d  # nerfstudio's own dependencies, as users would load the files
    import trimesh
    from mlflow import MlflowClient

    from nerftune.nerf import lpips

    loaded_lpips = []  # an export scores nothing: it never loads LPIPS, whose weights it might have to download
    monkeypatch.setattr(lpips, "_real_lpips", lambda *args, **kwargs: loaded_lpips.append(args))
    (trial,) = one_trial.trial_dirs()
    margin = Crop.from_json(json.loads((scene_dir / "transforms.json").read_text())["nerftune"]["crop"]).margin

    clouds = {}
    for flags in ([], ["--no-crop"]):
        out = tmp_path / f"cloud{len(flags)}"
        code, said, err = nerftune_cli("export", trial, "--pointcloud", "--num-points", 5000, "--out", out, *flags)
        assert code == 0, err
        points = np.asarray(o3d.io.read_point_cloud(str(out / "point_cloud.ply")).points)
        summary = json.loads((out / "export.json").read_text())
        assert len(points) == summary["points"] > 1000 and summary["cropped"] == (not flags), said
        # nerfstudio's output as the trial loads (dataset index dumps, image caching) goes to the trial's export.log
        assert said.splitlines()[-1] == f"nerfstudio's own output while the trial loaded: {trial / 'export.log'}"
        assert "Caching" not in said + err and "Dataset is overriding" not in said + err
        clouds[bool(flags)] = heights_above_card(points, scene_dir)
    assert (clouds[False] <= margin + 1e-4).all(), "inside the crop (the dataset's frame)"
    assert (clouds[True] > margin + 0.01).sum() > 100, "uncropped: the book and the mug rise above the card"

    # TSDF meshes: the cropped one textured (into the trial's own export/tsdf), the uncropped one bare
    meshes = {}
    for flags in (["--texture-size", 64], ["--no-crop", "--texture-size", 0, "--out", tmp_path / "bare"]):
        code, said, err = nerftune_cli("export", trial, "--mesh", "tsdf", *flags)
        assert code == 0, err
        out = trial / "export" / "tsdf" if "--out" not in flags else tmp_path / "bare"
        mesh = trimesh.load(out / "tsdf_mesh.ply", force="mesh", process=False)
        summary = json.loads((out / "export.json").read_text())
        assert len(mesh.vertices) == summary["vertices"] > 100 and len(mesh.faces) == summary["faces"] > 100
        assert summary["cropped"] == ("--no-crop" not in flags) and summary["seconds"] > 0, said
        meshes["--no-crop" in flags] = heights_above_card(mesh.vertices, scene_dir)
    assert (meshes[False] <= margin + 1e-4).all(), "the mesh lies inside the crop"
    assert "Caching all" in (trial / "export.log").read_text() and not loaded_lpips
    assert len(meshes[True]) > len(meshes[False]) and (meshes[True] > margin + 0.01).any(), "uncropped: more"

    textured = trimesh.load(trial / "export" / "tsdf" / "mesh.obj", force="mesh")
    assert textured.visual.material.image.size == (64, 64), "nerfstudio's OBJ, MTL and PNG texture"
    # decimated to ns-export's face budget (ours has fewer), moved to the dataset's frame with the PLY
    assert (heights_above_card(textured.vertices, scene_dir) <= margin + 1e-3).all()
    assert not (tmp_path / "bare" / "mesh.obj").exists(), "--texture-size 0: no texture"

    code, said, err = nerftune_cli("export", trial, "--mesh", "poisson", "--num-points", 20000, "--texture-size", 0)
    assert code == 0, err
    poisson = trimesh.load(trial / "export" / "poisson" / "poisson_mesh.ply", force="mesh", process=False)
    assert len(poisson.vertices) > 100 and (heights_above_card(poisson.vertices, scene_dir) <= margin + 1e-4).all()

    # each export is in the trial's MLflow run, under exports/
    run_id = one_trial.table.mlflow_run_id.iloc[0]
    client = MlflowClient(one_trial.tracking_uri)
    logged = {a.path for a in client.list_artifacts(run_id, "exports/tsdf")}
    assert {f"exports/tsdf/{name}" for name in ("tsdf_mesh.ply", "mesh.obj", "material_0.png", "export.json")} <= logged
    assert "exports/poisson/poisson_mesh.ply" in {a.path for a in client.list_artifacts(run_id, "exports/poisson")}
    assert f"logged to run {run_id}" in said


@pytest.mark.slow
def test_exports_nerfstudio_cannot_make_or_that_would_overwrite_are_one_line(one_trial):
    (trial,) = one_trial.trial_dirs()
    before = sorted(p for p in trial.rglob("*"))
    code, _, err = nerftune_cli("export", trial, "--mesh", "marching-cubes")
    assert code == 2 and err.count("\n") == 1 and "needs an SDF model" in err and "--mesh tsdf" in err, err
    assert str(trial) in err, "names the trial"
    assert sorted(p for p in trial.rglob("*")) == before, "nothing written"

    out = trial.parent / "taken"
    out.mkdir()
    code, _, err = nerftune_cli("export", trial, "--pointcloud", "--out", out)
    assert code == 2 and err.count("\n") == 1 and "exists already" in err and "--overwrite" in err, err
