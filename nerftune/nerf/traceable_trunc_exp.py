"""nerfstudio's `trunc_exp` (the density activation of nerfacto's field and proposal networks: exp, its gradient taken
at x clipped to [-15, 15]) as plain torch operations where a graph is traced, for the compiled training step
(`compiled_model.py`).

Why: nerfstudio writes it as a `torch.autograd.Function`. Traced whole, that Function made dynamo trace the step
twice (its float scalars: "Restarting analysis due to _tensorify_python_scalars") and AOTAutograd's cache refuse it
("Unsupported call_function target autograd_function_apply"), so every process traced the step's forward and
backward afresh: about 70 s of a compiled trial's setup on the CPU with torch's kernel cache warm, 35 s with this
(`benchmarks/compile_time.py`).
The same values and gradients; eager code keeps nerfstudio's Function.
"""

from __future__ import annotations

import sys

import torch
from nerfstudio.field_components.activations import _TruncExp

# nerfstudio's modules that import `trunc_exp` by name (nerfacto's field, the proposal networks, generfacto's field)
_USERS = ("nerfstudio.fields.nerfacto_field", "nerfstudio.fields.density_fields", "nerfstudio.fields.generfacto_field")


def trunc_exp(x: torch.Tensor) -> torch.Tensor:
    """nerfstudio's `trunc_exp`: its Function in eager code, plain operations in a traced graph."""
    if not torch.compiler.is_compiling():
        return _TruncExp.apply(x)
    if torch.is_autocast_enabled("cuda"):  # as its `torch.cuda.amp.custom_fwd(cast_inputs=torch.float32)`
        with torch.autocast("cuda", enabled=False):
            return _exp_with_clipped_gradient(x.float() if x.is_cuda else x)
    return _exp_with_clipped_gradient(x)


def _exp_with_clipped_gradient(x: torch.Tensor) -> torch.Tensor:
    # forward: exp(x) (plus zero); backward: the gradient times exp(x clipped), as `_TruncExp.backward` has it
    clipped = torch.exp(x.detach().clamp(-15, 15))
    return torch.exp(x).detach() + clipped * (x - x.detach())


def install() -> None:
    """Put `trunc_exp` in place of nerfstudio's in its modules already imported (a model's are, once it is built)."""
    for name in _USERS:
        module = sys.modules.get(name)
        # (`==`: each `_TruncExp.apply` is a new bound method)
        if module is not None and getattr(module, "trunc_exp", None) == _TruncExp.apply:
            module.trunc_exp = trunc_exp
