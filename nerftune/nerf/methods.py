"""The registry of nerfstudio methods (built-in and plugins): their configs, and what a spec check needs of them.

Importing nerfstudio's registry takes about 10 seconds, so what checking a spec needs (the method names, which need
CUDA, and each config's field schema) is cached as JSON per installation: the nerfstudio version, the plugins'
entry points and NERFSTUDIO_METHOD_CONFIGS make the key, so installing or removing a plugin rebuilds it. Set
NERFTUNE_CACHE_DIR to move the cache (default: ~/.cache/nerftune).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from nerftune.nerf import overrides

CACHE_FORMAT = 2  # bump when the cached facts change shape
PLUGIN_GROUP = "nerfstudio.method_configs"


def method_config(method: str):
    """A private copy of the method's default `TrainerConfig` (the registry's own objects must never be mutated)."""
    all_methods = registry()
    if method not in all_methods:
        raise KeyError(method)
    return copy.deepcopy(all_methods[method])


def registry() -> dict[str, Any]:
    """nerfstudio's methods by name. Importing its registry makes a stand-in for each method it lists but does not
    ship (26 of them), and each stand-in calls `inspect.stack()` to learn whether the import made it (then it does
    nothing) or the command line picked it (then it offers to install the method). That search for the source of
    every frame costs about 3 s per process: the command and every trial's worker. The import made them, so they
    are told so here, and the check is put back for anyone else."""
    from nerfstudio.configs.external_methods import ExternalMethodDummyTrainerConfig as StandIn

    check = StandIn.__post_init__
    StandIn.__post_init__ = lambda self: None
    try:
        from nerfstudio.configs.method_configs import all_methods
    finally:
        StandIn.__post_init__ = check
    return all_methods


def available_methods() -> tuple[str, ...]:
    """Every registered method name, plugins included, sorted."""
    return tuple(sorted(method_facts()))


def needs_cuda(method: str) -> bool:
    return method_facts()[method]["needs_cuda"]


def has_hash_grid(method: str) -> bool:
    """Whether the method's model has nerfstudio's hash grid (an `implementation`: tcnn or torch)."""
    return "pipeline.model.implementation" in method_facts()[method]["schema"]


def colour_only(method: str) -> bool:
    """Whether nerftune can train the method's colour alone, its geometry frozen (the nerfacto family)."""
    return method_facts()[method].get("colour_only", False)


def check_override(method: str, path: str, value: Any) -> None:
    """Raise `overrides.OverrideError` if `path` = `value` cannot apply to `method` (checked before a sweep)."""
    overrides.check(method_facts()[method]["schema"], path, value)


@lru_cache(maxsize=1)
def method_facts() -> dict[str, dict[str, Any]]:
    """{method: {"needs_cuda": bool, "schema": its config's field schema}}, from the cache or built and cached."""
    cache = cache_dir() / f"methods-{registry_key()}.json"
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):
        pass
    facts = _build_facts()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cache.parent, suffix=".tmp", delete=False) as handle:
            json.dump(facts, handle)
        os.replace(handle.name, cache)  # atomic: concurrent sweeps never read half a file
    except OSError:
        pass  # an unwritable cache only costs the next check the same seconds again
    return facts


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nerftune"
    return Path(os.environ.get("NERFTUNE_CACHE_DIR") or default)


def registry_key() -> str:
    """What the registry depends on: nerfstudio's version, the plugins installed, the plugin variable."""
    plugins = sorted(
        f"{ep.name}={ep.value}@{ep.dist.version if ep.dist else ''}" for ep in metadata.entry_points(group=PLUGIN_GROUP)
    )
    parts = [
        str(CACHE_FORMAT),
        metadata.version("nerfstudio"),
        *plugins,
        os.environ.get("NERFSTUDIO_METHOD_CONFIGS", ""),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _build_facts() -> dict[str, dict[str, Any]]:
    from nerfstudio.models.instant_ngp import InstantNGPModelConfig
    from nerfstudio.models.nerfacto import NerfactoModel
    from nerfstudio.models.splatfacto import SplatfactoModelConfig

    # their models run CUDA kernels (nerfacc's occupancy grid, gsplat's rasteriser) that have no CPU fallback
    cuda_only = (InstantNGPModelConfig, SplatfactoModelConfig)
    return {
        name: {
            "needs_cuda": isinstance(_model_config(config), cuda_only),
            "colour_only": _model_is(config, NerfactoModel),  # finetune.py knows its parts
            "schema": _trial_schema(name),
        }
        for name, config in registry().items()
    }


def _model_is(config: Any, model_class: type) -> bool:
    target = getattr(_model_config(config), "_target", None)
    return isinstance(target, type) and issubclass(target, model_class)


def _model_config(config: Any) -> Any:
    return getattr(getattr(config, "pipeline", None), "model", None)  # external methods' dummies have none


def _trial_schema(method: str) -> overrides.Schema:
    """The schema of the config a trial of `method` builds (in-process data manager included), where overrides land."""
    from nerftune.nerf.config import build_config

    try:
        return overrides.describe(build_config(method, Path("data"), Path("out"), 1, 0, "cpu"))
    except Exception:  # a method nerftune cannot train (no dataparser, say): its own defaults still tell field names
        return overrides.describe(method_config(method))
