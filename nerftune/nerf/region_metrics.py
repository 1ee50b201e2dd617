"""PSNR, SSIM and LPIPS inside a test view's document region (`doc_psnr`, `doc_ssim`, `doc_lpips`).

- PSNR: from the mean squared error over the region's pixels only.
- SSIM: the SSIM map of the whole image (nerfstudio's settings: 11-pixel Gaussian window), averaged over the region.
- LPIPS: on the region's bounding box, with the rendering's pixels outside the region replaced by the ground truth's,
  so that only the document's differences count (the box is padded to LPIPS's smallest input where needed).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchmetrics.functional import structural_similarity_index_measure

LPIPS_MIN_SIZE = 32  # AlexNet's five poolings need at least this many pixels a side


def region_metrics(truth: torch.Tensor, rendered: torch.Tensor, region: torch.Tensor, lpips=None) -> dict[str, float]:
    """`truth` and `rendered`: (H, W, 3) in [0, 1]; `region`: (H, W) bool. NaN where the region is empty."""
    if not bool(region.any()):
        return {"doc_psnr": math.nan, "doc_ssim": math.nan, "doc_lpips": math.nan}
    truth, rendered = truth[..., :3].float(), rendered[..., :3].float().clamp(0, 1)
    squared = ((truth - rendered) ** 2)[region]
    mse = float(squared.mean())
    psnr = math.inf if mse == 0 else -10 * math.log10(mse)
    channels_first = lambda image: image.permute(2, 0, 1)[None]  # noqa: E731
    _, ssim_map = structural_similarity_index_measure(
        channels_first(rendered), channels_first(truth), data_range=1.0, return_full_image=True
    )
    ssim = float(ssim_map[0].mean(0)[region].mean())
    return {"doc_psnr": psnr, "doc_ssim": ssim, "doc_lpips": _lpips(truth, rendered, region, lpips)}


def _lpips(truth: torch.Tensor, rendered: torch.Tensor, region: torch.Tensor, lpips) -> float:
    if lpips is None:
        return math.nan
    rows, cols = torch.nonzero(region, as_tuple=True)
    top, bottom, left, right = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    only_document = torch.where(region[..., None], rendered, truth)
    crops = [image[top:bottom, left:right].permute(2, 0, 1)[None] for image in (truth, only_document)]
    height, width = crops[0].shape[-2:]
    pad = (0, max(0, LPIPS_MIN_SIZE - width), 0, max(0, LPIPS_MIN_SIZE - height))
    crops = [F.pad(crop, pad, mode="replicate") for crop in crops]
    with torch.no_grad():
        return float(lpips(crops[1], crops[0]))
