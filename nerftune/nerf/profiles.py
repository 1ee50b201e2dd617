"""Profiles: named sets of config overrides that scale a method to the hardware at hand.

`tiny` makes a 1,000-step nerfacto trial take about a minute on two CPU cores and still learn (the numbers come
from measuring nerfacto on 2 cores: ~20 steps/s instead of ~0.2 with the defaults). `small` is for quick studies on a
GPU: nerfacto's own model with a quarter of its rays per batch and a hash table a quarter the size (the README's GPU
table has its speed and memory). An override only applies where
the method's config has that field, so one profile serves every method.
"""

from __future__ import annotations

from typing import Any

TINY_PROPOSAL_NETWORKS = [
    {"hidden_dim": 16, "log2_hashmap_size": 12, "num_levels": 5, "max_res": 64, "use_linear": False},
    {"hidden_dim": 16, "log2_hashmap_size": 12, "num_levels": 5, "max_res": 128, "use_linear": False},
]

PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    "small": {
        "pipeline.datamanager.train_num_rays_per_batch": 1024,
        "pipeline.datamanager.eval_num_rays_per_batch": 1024,
        "pipeline.model.log2_hashmap_size": 17,
    },
    "tiny": {
        "pipeline.datamanager.train_num_rays_per_batch": 256,
        "pipeline.datamanager.eval_num_rays_per_batch": 256,
        "pipeline.model.eval_num_rays_per_chunk": 8192,
        # nerfacto family
        "pipeline.model.num_levels": 8,
        "pipeline.model.log2_hashmap_size": 14,
        "pipeline.model.max_res": 512,
        "pipeline.model.hidden_dim": 32,
        "pipeline.model.hidden_dim_color": 32,
        "pipeline.model.hidden_dim_transient": 32,
        "pipeline.model.num_proposal_samples_per_ray": (32, 16),
        "pipeline.model.num_nerf_samples_per_ray": 16,
        "pipeline.model.proposal_net_args_list": TINY_PROPOSAL_NETWORKS,
        "pipeline.model.proposal_warmup": 500,
        # vanilla-nerf / mipnerf
        "pipeline.model.num_coarse_samples": 16,
        "pipeline.model.num_importance_samples": 16,
    },
}
