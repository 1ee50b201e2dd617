"""Everything checked before a sweep starts: the spec, the dataset, the methods and overrides, the machine, storage.

Each problem is an `InputError` (one line: file, field, problem, what to do); nothing is started and nothing
under the storage folder is overwritten when one is raised. Nothing here imports torch, Ray or nerfstudio (the
method registry is cached, see `nerf/methods.py`), so a check answers in about a second.
"""

from __future__ import annotations

import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerftune.data.dataset import Dataset, load_dataset
from nerftune.data.downscale import downscaled
from nerftune.dimensions import POSES, is_nerfstudio_setting
from nerftune.data.frames import resolve_frame_count
from nerftune.errors import InputError
from nerftune.cpu_compile import cpu_compiling
from nerftune.evaluation_cost import cpu_evaluation_warning
from nerftune.fast_path_setting import check_fast_path
from nerftune.machine import Gpu, mps_running, tcnn_installed, visible_gpus
from nerftune.nerf.methods import available_methods, check_override, has_hash_grid, needs_cuda
from nerftune.nerf.overrides import OverrideError
from nerftune.packing import PACKING_FILE, Packing, fits, max_copies, packing_key, read_packing
from nerftune.spec import DataSpec, SweepSpec, load_spec
from nerftune.study_checks import check_finetune_methods, check_study_data, has_document_text, warm_start_sources
from nerftune.legibility import OCR_MISSING, ocr_available

DATASETS_FOLDER = "_datasets"  # generated scenes, shared by the sweeps of one storage folder
TCNN_MISSING = (
    "tiny-cuda-nn is not installed: nerfacto's hash grid runs on nerfstudio's pure-torch code, compiled by the fast "
    "path (30.6 steps/s for nerfacto's defaults on an H100); the Docker image (docker/trial.Dockerfile) builds "
    "tiny-cuda-nn, with which NerfBaselines reports 52 to 58 steps/s on an A100 (README: On a GPU)"
)


@dataclass
class Scene:
    """One dataset of a sweep, checked: its folder, frames and fixed test set, and the views rendered of it."""

    name: str
    data_dir: Path
    dataset: Dataset
    test_every: int
    camera_paths: dict | None = None  # what `render` renders, in the dataset's frame
    downscaled_from: Path | None = None  # the data's own folder, where trials use a smaller copy (`data.downscale`)


@dataclass
class Prepared:
    """A validated sweep, ready to launch."""

    spec_path: Path
    spec: SweepSpec
    name: str
    storage: Path
    scenes: dict[str, Scene]  # one, or a study's several (the dimension `scene`), in the spec's order
    gpus: list[Gpu]  # listed once (nvidia-smi takes tens of ms); read by the plan, packing and provenance
    mps: bool = False  # NVIDIA's MPS runs for the GPUs: trials sharing one can run their kernels at once
    warnings: list[str] = field(default_factory=list)
    # trials on the CPU with a compiled hash grid, for (training, scoring): all, some or none (`cpu_compile.py`)
    cpu_compiling: tuple[str, str] = ("none", "none")
    packing: Packing | None = None  # `resources.gpu: auto`: the measured packing (None until measured)
    init_sources: dict[str, str] = field(default_factory=dict)  # each `init_from` value: its checkpoint file
    forced: list[str] = field(default_factory=list)  # what `--force` resumes over: a changed spec or data
    growth: Any = None  # `growth.Growth`: what a rerun with values added to a finished study's spec trains

    @property
    def largest_scene(self) -> Scene:
        """The scene with the largest images: what measures a sweep's heaviest trials."""
        return max(self.scenes.values(), key=lambda scene: scene.dataset.image_size[0] * scene.dataset.image_size[1])

    @property
    def gpu_per_trial(self) -> float | None:
        """Each trial's share of a GPU; None where `auto` has not been measured yet."""
        share = self.spec.resources.gpu
        if share != "auto":
            return share
        return 1 / self.packing.trials_per_gpu if self.packing else None

    @property
    def packing_key(self) -> str:
        """What a packing measurement of this sweep depends on: GPU model, methods, profile, fast path, image size,
        MPS."""
        methods = "+".join(self.spec.space["method"].choices)
        gpu = self.gpus[0].name if self.gpus else "no GPU"
        size = self.largest_scene.dataset.image_size
        return packing_key(gpu, methods, self.spec.profile, self.spec.fast_path, size, self.mps)

    @property
    def camera_paths_name(self) -> str:
        return self.spec.render.name if self.spec.render else "circles"

    @property
    def experiment_dir(self) -> Path:
        return self.storage / self.name


def prepare(spec_path: str | Path, storage: str | Path, name: str | None = None, on_cluster: bool = False) -> Prepared:
    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    storage = Path(storage).resolve()
    _check_writable(storage)
    gpus = visible_gpus()
    _check_methods(spec, spec_path, len(gpus), on_cluster)
    _check_overrides(spec, spec_path)
    scenes = {entry.scene_name: _scene(spec, entry, spec_path, storage) for entry in spec.data}  # slow: last
    warnings, compiling = [], ("none", "none")
    if spec.resources.gpu != 0 and not gpus and not on_cluster:
        if spec.resources.gpu == "auto":
            raise InputError(
                spec_path,
                "resources.gpu",
                "auto measures how many trials share a GPU, and no GPU is visible here",
                "set gpu: 0 to train on the CPU (or a number, on a cluster), or run where there is a GPU",
            )
        warnings.append(f"no GPU found: trials run on the CPU ({spec.resources.cpu:g} CPU per trial)")
    if (not gpus or spec.resources.gpu == 0) and not on_cluster:  # trials on the CPU
        datasets = [scene.dataset for scene in scenes.values()]
        steps = spec.space["steps"]  # a trial's training steps (fine-tuning apart): what it decides on
        counts = [int(count) for count in (steps.choices if steps.values is not None else (steps.min, steps.max))]
        compiling = cpu_compiling(spec.fast_path, spec.space["method"].choices, (min(counts), max(counts)), datasets)
        compiled = compiling[1] != "none"
        warnings += filter(None, [cpu_evaluation_warning(datasets, spec.max_downscale, compiled)])
    if gpus and not tcnn_installed() and any(map(has_hash_grid, spec.space["method"].choices)):
        warnings.append(TCNN_MISSING)
    if any(has_document_text(scene.dataset) for scene in scenes.values()) and not ocr_available():
        warnings.append(OCR_MISSING)
    mps = bool(gpus) and mps_running()
    prepared = Prepared(spec_path, spec, name or spec.name, storage, scenes, gpus, mps, warnings, compiling)
    prepared.init_sources = warm_start_sources(spec, spec_path, storage, scenes)
    if gpus:
        prepared.packing = read_packing(prepared.experiment_dir, prepared.packing_key)
        _check_gpu_share(prepared)
    return prepared


def _check_gpu_share(prepared: Prepared) -> None:
    """A fractional GPU that would put more trials on a GPU than its measured memory holds is refused."""
    share, packing = prepared.spec.resources.gpu, prepared.packing
    if share == "auto" or not 0 < share < 1 or packing is None:
        return
    per_trial = max(m.per_trial_mb for m in packing.measurements)
    copies = int(1 / share)
    if not fits(copies, per_trial, packing.gpu_memory_mb):
        most = max_copies(per_trial, packing.gpu_memory_mb)
        raise InputError(
            prepared.spec_path,
            "resources.gpu",
            f"{share:g} puts {copies} trials on each {packing.gpu_memory_mb:.0f} MB GPU, and each needs "
            f"{per_trial:.0f} MB (measured {packing.measured_at}, {prepared.experiment_dir / PACKING_FILE})",
            f"use gpu: {1 / max(most, 1):g} or more, or gpu: auto",
        )


def _scene(spec: SweepSpec, entry: DataSpec, spec_path: Path, storage: Path) -> Scene:
    data_dir = source_dir = _resolve_data(entry, spec_path, storage)
    if entry.downscale > 1:
        data_dir = _downscaled(spec, entry, spec_path, source_dir, storage)
    dataset = load_dataset(data_dir, entry.test_every)
    _check_frames(spec, spec_path, dataset)
    if spec.warm_start is not None:
        _check_frames(spec.source_spec(), spec_path, dataset, "warm_start.frames")
    check_study_data(spec, spec_path, dataset)
    camera_paths = _camera_paths(spec, spec_path, dataset, source_dir, entry.downscale)
    downscaled_from = source_dir if data_dir != source_dir else None
    return Scene(entry.scene_name, data_dir, dataset, entry.test_every, camera_paths, downscaled_from)


def _camera_paths(spec: SweepSpec, spec_path: Path, dataset: Dataset, source: Path, downscale: int) -> dict | None:
    """The render paths: read from the spec's file, or made from the data like `nerftune paths` makes them. A file
    made for the data's own folder (`source`) serves its downscaled copy, at the copy's size."""
    from nerftune.camera_paths import make_paths, read_paths

    render = spec.render
    if render is None:
        return None
    if render.paths and len(spec.data) > 1:
        raise InputError(
            spec_path,
            "render.paths",
            f"a paths file fits one dataset, and this study has {len(spec.data)}",
            "use `circles`: they are made for each scene",
        )
    if render.paths:
        path = Path(render.paths).expanduser()
        path = path if path.is_absolute() else spec_path.parent / path
        camera_paths = read_paths(path, "render.paths")
        made_for = Path(camera_paths["nerftune"].get("data", "")).resolve()
        if made_for not in (dataset.root.resolve(), source.resolve()):
            raise InputError(
                spec_path,
                "render.paths",
                f"{path} was made for {made_for}, not for this sweep's data {source}",
                f"run `nerftune paths {shlex.quote(str(source))}` and use its file",
            )
        if made_for != dataset.root.resolve():  # the same views, as many pixels as the copy's images have
            for key in ("render_width", "render_height"):
                camera_paths[key] = max(1, round(camera_paths[key] / downscale))
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


def _resolve_data(entry: DataSpec, spec_path: Path, storage: Path) -> Path:
    if entry.synthetic_scene:
        from nerftune.data.synthetic import SceneOptions, write_scene

        try:
            options = SceneOptions(**entry.scene)
        except TypeError as error:
            raise InputError(spec_path, "data.scene", str(error), "options: frames, width, height, fov_y_deg") from None
        return write_scene(storage / DATASETS_FOLDER / options.name(), options)
    if entry.scene:
        raise InputError(spec_path, "data.scene", "only a synthetic scene takes scene options", "remove it")
    path = Path(entry.path).expanduser()
    return (path if path.is_absolute() else spec_path.parent / path).resolve()


def _downscaled(spec: SweepSpec, entry: DataSpec, spec_path: Path, data_dir: Path, storage: Path) -> Path:
    """The data at 1/`downscale` of its size: a copy in the storage folder (`data/downscale.py`)."""
    if POSES in spec.space and "per_subset" in spec.space[POSES].choices:
        raise InputError(
            spec_path,
            "data.downscale",
            "poses: per_subset runs SfM again on the capture's frames at their own size, not on a downscaled copy",
            "leave downscale out of a per_subset study",
        )
    return downscaled(load_dataset(data_dir, entry.test_every), entry.downscale, storage / DATASETS_FOLDER)


def _check_frames(spec: SweepSpec, spec_path: Path, dataset: Dataset, field: str = "space.frames") -> None:
    dim = spec.space["frames"]
    for value in dim.choices or [int(dim.max)]:
        try:
            resolve_frame_count(value, len(dataset.pool))
        except ValueError:
            raise InputError(
                spec_path,
                field,
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
        check_finetune_methods(spec, spec_path, method)
    check_fast_path(spec.fast_path, spec.space["method"].choices, spec_path, gpus, on_cluster)


def _check_overrides(spec: SweepSpec, spec_path: Path) -> None:
    for path, dim in spec.space.items():
        if not is_nerfstudio_setting(path):
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
