"""LPIPS without a network: nerfstudio models build torchmetrics' LPIPS in `populate_modules`, which downloads
AlexNet's ImageNet weights on first use. Offline that raises and would kill every trial; instead LPIPS becomes
unavailable (NaN, reported as an empty value) with one warning saying how to provide the weights.
"""

from __future__ import annotations

import socket
import warnings

import torch
import torchmetrics.image.lpip as lpip_module

from nerftune.outcomes import LPIPS_MISSING

_real_lpips = lpip_module.LearnedPerceptualImagePatchSimilarity
_failure: str | None = None  # why the weights could not be loaded in this process; not retried
# torch hub downloads with no timeout: behind a firewall that drops packets, or a proxy that never answers, a trial
# would wait minutes, or for ever, on a metric it can do without
DOWNLOAD_TIMEOUT_S = 20.0


class UnavailableLPIPS(torch.nn.Module):
    """Stands in for LPIPS when its weights cannot be had: every score is NaN."""

    def forward(self, *images: torch.Tensor) -> torch.Tensor:
        return torch.tensor(float("nan"))


def lpips_or_unavailable(*args, **kwargs) -> torch.nn.Module:
    """The real LPIPS metric, or `UnavailableLPIPS` once its weights failed to load in this process.

    Either way the global RNG is left as it was (AlexNet's random init would consume it only on the first, failing
    try), so that a trial's sampling does not depend on whether an earlier trial in the worker tried the download.
    """
    global _failure
    if _failure is None:
        default_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            with torch.random.fork_rng(devices=[]):
                return _real_lpips(*args, **kwargs)
        except OSError as error:  # URLError, timeouts and friends: no network, no cached weights
            _failure = str(error)
            warnings.warn(f"{LPIPS_MISSING} (torch hub: {torch.hub.get_dir()}; {error})", stacklevel=2)
        finally:
            socket.setdefaulttimeout(default_timeout)
    return UnavailableLPIPS()


def lpips_unavailable_reason() -> str | None:
    return _failure


def install(wanted: bool = True) -> None:
    """Make the nerfstudio models built next get `lpips_or_unavailable` (they import the class inside
    `populate_modules`), or, where LPIPS is not `wanted` (a model loaded to render or export), `UnavailableLPIPS`
    without trying its weights."""
    lpip_module.LearnedPerceptualImagePatchSimilarity = lpips_or_unavailable if wanted else _not_wanted


def _not_wanted(*args, **kwargs) -> torch.nn.Module:
    return UnavailableLPIPS()
