"""The plan a sweep prints before it starts (and all that `--dry-run` does): trials, data, space, scheduler,
resources, devices and tracking. Pure: it imports none of torch, Ray, nerfstudio or MLflow."""

from __future__ import annotations

from nerftune.preflight import Prepared
from nerftune.schedule import rungs
from nerftune.spec import value_text
from nerftune.tracking import TrackingTarget


def trial_resources(prepared: Prepared, on_cluster: bool) -> dict[str, float]:
    """What each trial asks Ray for: its CPUs, and its GPU share where there are GPUs (or may be, on a cluster)."""
    resources = {"cpu": prepared.spec.resources.cpu}
    if prepared.spec.resources.gpu > 0 and (prepared.gpus > 0 or on_cluster):
        resources["gpu"] = prepared.spec.resources.gpu
    return resources


def describe_plan(prepared: Prepared, on_cluster: bool, target: TrackingTarget | None) -> str:
    spec, dataset = prepared.spec, prepared.dataset
    replicated = (
        f" ({spec.configuration_count} configurations x {len(spec.replicate_values)} {spec.replicates} replicates)"
        if spec.replicates
        else ""
    )
    lines = [
        f"sweep {prepared.name}: {spec.trial_count} trials{replicated}, {spec.search.algorithm} search "
        f"(seed {spec.search.seed}), metric {spec.metric.name} ({spec.metric.mode})",
        f"data: {prepared.data_dir} ({len(dataset.frames)} frames: {len(dataset.pool)} in the training pool, "
        f"{len(dataset.test_indices)} test frames, test hash {dataset.test_hash})",
        "search dimensions:",
    ]
    for name, dim in spec.space.items():
        if dim.values is not None:
            shown = ", ".join(map(value_text, dim.values)) + ("" if len(dim.values) > 1 else "  (fixed)")
        else:
            shown = f"{dim.type} in [{dim.min:g}, {dim.max:g}]" + (" log" if dim.log else "")
        lines.append(f"  {name}: {shown}")
    steps = rungs(spec)
    if steps:
        judged = "replicate means of configurations" if spec.replicates else "configurations"
        strata = f", within each {' x '.join(spec.stratify)}" if spec.stratify else ""
        lines.append(
            f"scheduler: ASHA on `step` over {judged}{strata}, rungs at steps {', '.join(map(str, steps))} "
            f"(max {spec.max_steps})"
        )
    else:
        lines.append(f"scheduler: none, every trial trains its full steps (max {spec.max_steps})")
    resources = trial_resources(prepared, on_cluster)
    concurrency = spec.max_concurrent_trials or "as resources allow"
    lines.append(
        f"resources per trial: {', '.join(f'{v:g} {k}' for k, v in resources.items())}; "
        f"concurrent trials: {concurrency}"
    )
    devices = "a Ray cluster" if on_cluster else (f"{prepared.gpus} GPU(s)" if prepared.gpus else "CPU only")
    lines.append(f"devices: {devices}; profile: {spec.profile}; output: {prepared.experiment_dir}")
    lines.append(f"tracking: MLflow experiment {target.experiment} at {target.uri}" if target else "tracking: off")
    return "\n".join(lines)
