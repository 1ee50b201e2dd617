"""Everything checked before a sweep starts: the spec, the dataset, the methods and overrides, the machine, storage.

Each problem is an `InputError` (one line: file, field, problem, what to do); nothing is started and nothing
under the storage folder is overwritten when one is raised. Nothing here imports torch, Ray or nerfstudio (the
method registry is cached, see `nerf/methods.py`), so a check answers in about a second.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerftune.data.dataset import Dataset, load_dataset
from nerftune.data.frames import resolve_frame_count
from nerftune.errors import InputError
from nerftune.machine import gpu_count
from nerftune.nerf.methods import available_methods, check_override, needs_cuda
from nerftune.nerf.overrides import OverrideError
from nerftune.spec import SweepSpec, load_spec

DATASETS_FOLDER = "_datasets"  # generated scenes, shared by the sweeps of one storage folder


@dataclass
class Prepared:
    """A validated sweep, ready to launch."""

    spec_path: Path
    spec: SweepSpec
    name: str
    storage: Path
    data_dir: Path
    dataset: Dataset
    gpus: int
    warnings: list[str] = field(default_factory=list)
    camera_paths: dict | None = None  # what `render` renders, in the dataset's frame

    @property
    def camera_paths_name(self) -> str:
        spec = self.spec.render
        return Path(spec.paths).stem if spec and spec.paths else "circles"

    @property
    def experiment_dir(self) -> Path:
        return self.storage / self.name


def prepare(spec_path: str | Path, storage: str | Path, name: str | None = None, on_cluster: bool = False) -> Prepared:
    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    storage = Path(storage).resolve()
    _check_writable(storage)
    gpus = gpu_count()
    _check_methods(spec, spec_path, gpus, on_cluster)
    _check_overrides(spec, spec_path)
    data_dir = _resolve_data(spec, spec_path, storage)  # the data last: reading it is the slow part
    dataset = load_dataset(data_dir, spec.data.test_every)
    _check_frames(spec, spec_path, dataset)
    warnings = []
    if spec.resources.gpu > 0 and gpus == 0 and not on_cluster:
        warnings.append(f"no GPU found: trials run on the CPU ({spec.resources.cpu:g} CPU per trial)")
    camera_paths = _camera_paths(spec, spec_path, dataset)
    return Prepared(spec_path, spec, name or spec.name, storage, data_dir, dataset, gpus, warnings, camera_paths)


def _camera_paths(spec: SweepSpec, spec_path: Path, dataset: Dataset) -> dict | None:
    """The render paths: read from the spec's file, or made from the data like `nerftune paths` makes them."""
    from nerftune.novel_views import make_paths, read_paths

    render = spec.render
    if render is None:
        return None
    if render.paths:
        path = Path(render.paths).expanduser()
        path = path if path.is_absolute() else spec_path.parent / path
        camera_paths = read_paths(path, "render.paths")
        made_for = Path(camera_paths["nerftune"].get("data", ""))
        if made_for.resolve() != dataset.root.resolve():
            raise InputError(
                spec_path,
                "render.paths",
                f"{path} was made for {made_for}, not for this sweep's data {dataset.root}",
                f"run `nerftune paths {dataset.root}` and use its file",
            )
        return camera_paths
    circles = render.circles
    return make_paths(dataset, circles.radii, circles.distances, circles.views)


def _check_writable(storage: Path) -> None:
    try:
        storage.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=storage):
            pass
    except OSError as error:
        raise InputError(storage, "--storage", f"not writable ({error.strerror})", "choose another folder") from None


def _resolve_data(spec: SweepSpec, spec_path: Path, storage: Path) -> Path:
    if spec.data.synthetic_scene:
        from nerftune.data.synthetic import SceneOptions, write_scene

        try:
            options = SceneOptions(**spec.data.scene)
        except TypeError as error:
            raise InputError(spec_path, "data.scene", str(error), "options: frames, width, height, fov_y_deg") from None
        return write_scene(storage / DATASETS_FOLDER / options.name(), options)
    if spec.data.scene:
        raise InputError(spec_path, "data.scene", "only a synthetic scene takes scene options", "remove it")
    path = Path(spec.data.path).expanduser()
    return (path if path.is_absolute() else spec_path.parent / path).resolve()


def _check_frames(spec: SweepSpec, spec_path: Path, dataset: Dataset) -> None:
    dim = spec.space["frames"]
    for value in dim.choices or [int(dim.max)]:
        try:
            resolve_frame_count(value, len(dataset.pool))
        except ValueError:
            raise InputError(
                spec_path,
                "space.frames",
                f"{value} frames asked, but {dataset.root} has {len(dataset.pool)} training frames "
                f"({len(dataset.frames)} frames, {len(dataset.test_indices)} kept for testing)",
                f"use at most {len(dataset.pool)} or a fraction such as 0.5",
            ) from None


def _check_methods(spec: SweepSpec, spec_path: Path, gpus: int, on_cluster: bool) -> None:

    valid = available_methods()
    for method in spec.space["method"].choices:
        if method not in valid:
            raise InputError(spec_path, "space.method", f"unknown method {method!r}", f"valid: {', '.join(valid)}")
        if needs_cuda(method) and gpus == 0 and not on_cluster:
            raise InputError(
                spec_path, "space.method", f"{method} needs a CUDA GPU and none is visible", "use nerfacto on the CPU"
            )


def _check_overrides(spec: SweepSpec, spec_path: Path) -> None:
    for path, dim in spec.space.items():
        if "." not in path:
            continue
        samples: list[Any] = dim.choices or [_cast(dim.type, dim.min), _cast(dim.type, dim.max)]
        for method in spec.space["method"].choices:
            for value in samples:
                try:
                    check_override(method, path, value)
                except OverrideError as error:
                    raise InputError(
                        spec_path, f"space.{path}", f"{error} (method {method})", "fix the path or value"
                    ) from None


def _cast(kind: str | None, value: float | None) -> Any:
    return int(value) if kind == "int" else float(value)
