"""The registry of nerfstudio methods (built-in and plugins) and what each needs to run."""

from __future__ import annotations

import copy
from functools import lru_cache

from nerfstudio.configs.method_configs import all_methods
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.models.instant_ngp import InstantNGPModelConfig
from nerfstudio.models.splatfacto import SplatfactoModelConfig

# their models run CUDA kernels (nerfacc's occupancy grid, gsplat's rasteriser) that have no CPU fallback
CUDA_ONLY_MODELS = (InstantNGPModelConfig, SplatfactoModelConfig)


@lru_cache(maxsize=1)
def available_methods() -> tuple[str, ...]:
    """Every registered method name, plugins included, sorted."""
    return tuple(sorted(all_methods))


def method_config(method: str) -> TrainerConfig:
    """A private copy of the method's default config (the registry's own objects must never be mutated)."""
    if method not in all_methods:
        raise KeyError(method)
    return copy.deepcopy(all_methods[method])


def needs_cuda(method: str) -> bool:
    return isinstance(all_methods[method].pipeline.model, CUDA_ONLY_MODELS)
