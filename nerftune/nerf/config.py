"""Building a trial's nerfstudio `TrainerConfig`: method defaults, then the profile, then the spec's dotted overrides.

Dotted paths start at the `TrainerConfig`: `pipeline.model.hidden_dim`, `optimizers.fields.optimizer.lr`,
`pipeline.datamanager.train_num_rays_per_batch`. They walk dataclass attributes and dict keys alike.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Literal, Mapping

from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.data.datamanagers.parallel_datamanager import ParallelDataManagerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.trainer import TrainerConfig

from nerftune.nerf.methods import method_config
from nerftune.nerf.profiles import PROFILES


class OverrideError(ValueError):
    """A dotted override that does not fit the method's config (unknown field or wrong type)."""


def build_config(
    method: str,
    data_dir: Path,
    output_dir: Path,
    steps: int,
    seed: int,
    device: str,
    profile: str = "default",
    overrides: Mapping[str, Any] | None = None,
) -> TrainerConfig:
    """The complete config of one trial; nerfstudio's viewer and loggers stay off, data loading stays in-process."""
    config = method_config(method)
    config.method_name = method
    config.output_dir = output_dir
    config.experiment_name = "trial"
    config.timestamp = "run"
    config.vis = "tensorboard"  # never "viewer": nerftune builds no event writers, so nothing is logged either
    config.max_num_iterations = steps
    config.machine.seed = seed
    config.machine.device_type = device
    config.machine.num_devices = 1
    config.mixed_precision = config.mixed_precision and device == "cuda"
    config.logging.local_writer.enable = False
    _use_in_process_data(config, data_dir)
    for path, value in PROFILES[profile].items():
        if _has_path(config, path):
            set_path(config, path, value)
    if device == "cpu" and _has_path(config, "pipeline.model.implementation"):
        set_path(config, "pipeline.model.implementation", "torch")  # tiny-cuda-nn is CUDA only
    for path, value in (overrides or {}).items():
        set_path(config, path, value)
    return config


def check_override(method: str, path: str, value: Any) -> None:
    """Raise `OverrideError` if `path` = `value` cannot apply to `method` (used before a sweep starts)."""
    set_path(method_config(method), path, value)


def _use_in_process_data(config: TrainerConfig, data_dir: Path) -> None:
    """Vanilla data manager (the parallel one starts unseeded worker processes) over the nerfstudio dataparser."""
    datamanager = config.pipeline.datamanager
    if isinstance(datamanager, ParallelDataManagerConfig):
        shared = {f.name: getattr(datamanager, f.name) for f in dataclasses.fields(VanillaDataManagerConfig)}
        shared.pop("_target")
        datamanager = VanillaDataManagerConfig(**shared)
        config.pipeline.datamanager = datamanager
    parser = datamanager.dataparser
    if not isinstance(parser, NerfstudioDataParserConfig):
        parser = NerfstudioDataParserConfig()
        datamanager.dataparser = parser
    # views list absolute paths; nerfstudio's automatic downscaling would look for images_N/ beside the view
    parser.downscale_factor = 1
    parser.data = data_dir
    datamanager.data = data_dir
    config.data = data_dir


def _has_path(config: Any, path: str) -> bool:
    try:
        parent, key = _parent(config, path)
    except OverrideError:
        return False
    return key in parent if isinstance(parent, dict) else hasattr(parent, key)


def _parent(config: Any, path: str) -> tuple[Any, str]:
    *parents, key = path.split(".")
    node = config
    for depth, part in enumerate(parents):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif not isinstance(node, dict) and dataclasses.is_dataclass(node) and hasattr(node, part):
            node = getattr(node, part)
        else:
            where = ".".join(parents[:depth]) or "the trainer config"
            raise OverrideError(f"{where} has no field {part!r}{_known_fields(node)}")
    return node, key


def set_path(config: Any, path: str, value: Any) -> None:
    """Set a dotted field, converting lists to tuples and ints to floats where the field wants them."""
    parent, key = _parent(config, path)
    if isinstance(parent, dict):
        if key not in parent:
            raise OverrideError(f"{path.rsplit('.', 1)[0]} has no key {key!r}; keys: {', '.join(map(str, parent))}")
        parent[key] = value
        return
    if not hasattr(parent, key):
        raise OverrideError(
            f"{path.rsplit('.', 1)[0] if '.' in path else 'the config'} has no field {key!r}{_known_fields(parent)}"
        )
    setattr(parent, key, _coerce(path, getattr(parent, key), _field_type(parent, key), value))


def _coerce(path: str, current: Any, annotation: Any, value: Any) -> Any:
    if typing.get_origin(annotation) is Literal:
        if value not in typing.get_args(annotation):
            choices = ", ".join(map(repr, typing.get_args(annotation)))
            raise OverrideError(f"{path} must be one of {choices}, not {value!r}")
        return value
    if current is None or value is None:
        return value
    if isinstance(current, bool) != isinstance(value, bool):
        raise OverrideError(f"{path} is {_kind(current)}, not {_kind(value)} ({value!r})")
    if isinstance(current, float) and isinstance(value, int):
        return float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(current, Path) and isinstance(value, str):
        return Path(value)
    if type(current) is not type(value) and not (
        isinstance(current, (list, tuple)) and isinstance(value, (list, tuple))
    ):
        raise OverrideError(f"{path} is {_kind(current)}, not {_kind(value)} ({value!r})")
    return value


def _field_type(parent: Any, key: str) -> Any:
    try:
        return typing.get_type_hints(type(parent)).get(key)
    except Exception:  # forward references nerfstudio never resolves: fall back to the value's own type
        return None


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), type(value).__name__
    )


def _known_fields(node: Any) -> str:
    if dataclasses.is_dataclass(node):
        names = [f.name for f in dataclasses.fields(node) if not f.name.startswith("_")]
        return f"; fields: {', '.join(names)}"
    return ""


def config_yaml(config: TrainerConfig) -> str:
    """The resolved config as nerfstudio writes it (`config.yml`, loadable by `ns-render` and `ns-eval`)."""
    import yaml

    return yaml.dump(config)


def key_values(config: TrainerConfig) -> dict[str, Any]:
    """The resolved values worth comparing across trials: the model's scalar settings and the ray budget."""
    model = config.pipeline.model
    values: dict[str, Any] = {"model": type(model).__name__, "max_num_iterations": config.max_num_iterations}
    values["train_num_rays_per_batch"] = getattr(config.pipeline.datamanager, "train_num_rays_per_batch", None)
    for item in dataclasses.fields(model):
        value = getattr(model, item.name)
        if not item.name.startswith("_") and isinstance(value, (bool, int, float, str, tuple)):
            values[f"model.{item.name}"] = value
    return values
