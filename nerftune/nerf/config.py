"""Building a trial's nerfstudio `TrainerConfig`: method defaults, then the profile, then the spec's dotted overrides.

Dotted paths start at the `TrainerConfig`: `pipeline.model.hidden_dim`, `optimizers.fields.optimizer.lr`,
`pipeline.datamanager.train_num_rays_per_batch` (see `overrides`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from pathlib import Path
from typing import Any, Mapping

from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.data.datamanagers.parallel_datamanager import ParallelDataManagerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.trainer import TrainerConfig

from nerftune.nerf.fast_path import IMPLEMENTATION_FIELD, default_implementation
from nerftune.nerf.methods import method_config
from nerftune.nerf.overrides import has_path, set_path
from nerftune.nerf.profiles import PROFILES


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
        if has_path(config, path):
            set_path(config, path, value)
    if has_path(config, IMPLEMENTATION_FIELD):
        # said here rather than in nerfstudio's tiny-cuda-nn warning, which it prints once per module
        set_path(config, IMPLEMENTATION_FIELD, default_implementation(device))
    for path, value in (overrides or {}).items():
        set_path(config, path, value)
    return config


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


def as_registered(config: TrainerConfig) -> TrainerConfig:
    """The config with the data manager the method registers (nerfstudio's own tools rebuild that one, so
    `ns-eval` and friends need its config), the in-process one's settings carried over."""
    native = method_config(config.method_name).pipeline.datamanager
    ours = config.pipeline.datamanager
    if type(native) is not type(ours):
        shared = {f.name: getattr(ours, f.name) for f in dataclasses.fields(ours) if f.name != "_target"}
        config.pipeline.datamanager = type(native)(**{k: v for k, v in shared.items() if hasattr(native, k)})
    return config


def dataparser_outputs(config: TrainerConfig, split: str):
    """What nerfstudio's dataparser makes of the config's data for one split (its cameras, in the model's frame, and
    its images, in nerfstudio's order), without building the model."""
    with contextlib.redirect_stdout(io.StringIO()):  # the dataparser's notes on its splits
        return config.pipeline.datamanager.dataparser.setup().get_dataparser_outputs(split=split)


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
