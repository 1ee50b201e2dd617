"""What a nerfstudio training run keeps outside its models' `state_dict`: the global random generators its samplers
draw from, the plain-number counters of its modules, and the module-global writers and profiler."""

from __future__ import annotations

import random

import numpy as np
import torch
from nerfstudio.utils import profiler, writer


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch: nerfstudio's pixel and image samplers draw from these global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def reset_nerfstudio_globals() -> None:
    writer.EVENT_WRITERS.clear()
    writer.EVENT_STORAGE.clear()
    writer.GLOBAL_BUFFER.clear()
    profiler.PROFILER.clear()
    profiler.PYTORCH_PROFILER = None


def module_scalars(root: torch.nn.Module) -> dict[str, dict[str, int | float | bool]]:
    """The plain-number attributes of every submodule: training counters that `state_dict` leaves out.

    nerfacto's proposal sampler, for one, counts steps since its networks were last updated
    (`_steps_since_update`, reset by evaluation too); without it a resumed trial drifts from an uninterrupted one.
    """
    return {
        name: {
            k: v for k, v in vars(module).items() if isinstance(v, (int, float, bool, np.number)) and k != "training"
        }
        for name, module in root.named_modules()
    }


def restore_module_scalars(root: torch.nn.Module, scalars: dict[str, dict[str, int | float | bool]]) -> None:
    modules = dict(root.named_modules())
    for name, values in scalars.items():
        if name in modules:
            for key, value in values.items():
                setattr(modules[name], key, value)
