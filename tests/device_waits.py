"""Where a step would make the host wait for a GPU, found on the CPU: torch's meta device stands in for the GPU (shapes,
no data), and every operation is watched. On CUDA the host waits at a copy from ordinary memory to the device (torch
synchronises the stream for it, and so for CPU indices into a device tensor), at a read back of a device tensor
(`.cpu()`, `.item()`, `bool()`, a CPU tensor written from it), and at an operation whose output size depends on the
data (`nonzero`, `unique`)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

DATA_DEPENDENT = ("aten.nonzero", "aten.unique", "aten._unique", "aten.masked_select")


class DeviceWaits(TorchDispatchMode):
    """Records each operation that would make the host wait, as (kind, operation): kind "copy from the CPU",
    "read back" or "data-dependent". A read back is answered with zeros (the meta device has no data to give);
    `queued()` leaves out what runs within it (on CUDA, copies from pinned memory that do not wait)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[tuple[str, str]] = []
        self._queued = False

    @contextmanager
    def queued(self) -> Iterator[None]:
        self._queued = True
        try:
            yield
        finally:
            self._queued = False

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.waits]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self._queued:
            return func(*args, **kwargs)
        name = str(func)
        inputs = [arg for arg in tree_leaves((args, kwargs)) if isinstance(arg, torch.Tensor)]  # (indices in lists)
        on_device = [arg for arg in inputs if arg.device.type != "cpu"]
        if on_device and name.startswith("aten._local_scalar_dense"):
            self.waits.append(("read back", name))
            return 0
        if on_device and name.startswith("aten._to_copy") and kwargs.get("device") == torch.device("cpu"):
            self.waits.append(("read back", name))
            return torch.zeros(args[0].shape, dtype=kwargs.get("dtype") or args[0].dtype)
        if name.startswith("aten.copy_") and args[0].device.type == "cpu" and args[1].device.type != "cpu":
            self.waits.append(("read back", name))  # a device tensor written into a CPU one
            return args[0].zero_()
        if on_device and name.startswith(DATA_DEPENDENT):
            self.waits.append(("data-dependent", name))
        out = func(*args, **kwargs)
        if any(o.device.type != "cpu" for o in tensors_of(out)) and any(
            arg.device.type == "cpu" and arg.dim() > 0 for arg in inputs
        ):
            self.waits.append(("copy from the CPU", name))
        return out


def tensors_of(value) -> list[torch.Tensor]:
    """The tensors of an operation's output (one, or a list or tuple of them)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return [item for item in values if isinstance(item, torch.Tensor)]
