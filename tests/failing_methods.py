"""Test-only nerfstudio methods, registered through NERFSTUDIO_METHOD_CONFIGS as a plugin would be.

They are nerfacto for `fail_after` steps of each attempt, then fail the way real trials do: `nerftune-test-oom`
raises the error a GPU out of memory raises (which cannot be caused on a CPU machine), `nerftune-test-nan` turns its
loss into NaN, and `nerftune-test-killed` has its process killed (SIGKILL), as the system's out-of-memory killer does.
"""

import os
import signal
from dataclasses import dataclass, field
from typing import Literal, Type

from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.models.nerfacto import NerfactoModel, NerfactoModelConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification


@dataclass
class FailingNerfactoConfig(NerfactoModelConfig):
    _target: Type = field(default_factory=lambda: FailingNerfacto)
    failure: Literal["oom", "nan", "killed"] = "oom"
    fail_after: int = 30


class FailingNerfacto(NerfactoModel):
    config: FailingNerfactoConfig

    def get_loss_dict(self, outputs, batch, metrics_dict=None):
        losses = super().get_loss_dict(outputs, batch, metrics_dict)
        # counted per attempt, like a transient failure: in a dict, which checkpoints do not keep (they keep a
        # model's plain-number counters)
        self.this_attempt = getattr(self, "this_attempt", {"losses": 0})
        self.this_attempt["losses"] += 1
        if self.this_attempt["losses"] > self.config.fail_after:
            if self.config.failure == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.config.failure == "oom":
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (raised by a test method)")
            losses["rgb_loss"] = losses["rgb_loss"] * float("nan")
        return losses


def _method(failure: str) -> MethodSpecification:
    adam = lambda lr: {"optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15), "scheduler": None}  # noqa: E731
    config = TrainerConfig(
        method_name=f"nerftune-test-{failure}",
        pipeline=VanillaPipelineConfig(
            datamanager=VanillaDataManagerConfig(dataparser=NerfstudioDataParserConfig()),
            model=FailingNerfactoConfig(failure=failure),
        ),
        optimizers={"proposal_networks": adam(1e-2), "fields": adam(1e-2), "camera_opt": adam(1e-3)},
    )
    return MethodSpecification(config=config, description=f"nerfacto that fails ({failure}) after 30 steps")


oom_method = _method("oom")
nan_method = _method("nan")
killed_method = _method("killed")
ENVIRONMENT = ",".join(f"nerftune-test-{f}=failing_methods:{f}_method" for f in ("oom", "nan", "killed"))
