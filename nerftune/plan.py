"""The plan a sweep prints before it starts (and all that `--dry-run` does): trials, data, space, scheduler,
resources, devices and tracking. Pure: it imports none of torch, Ray, nerfstudio or MLflow."""

from __future__ import annotations

import math

from nerftune.cpu_compile import plan_text
from nerftune.dimensions import COSTLY_DIMENSIONS
from nerftune.machine import cpu_count
from nerftune.novel_views import rendered_trials_text
from nerftune.outcomes import metric_amount
from nerftune.preflight import Prepared
from nerftune.replicate_precision import enough_line, precision_line
from nerftune.schedule import rungs
from nerftune.scoring_progress import duration_text
from nerftune.spec import FINETUNE_STEPS, FRAME_SUBSET, INIT_FROM, SOURCE, SweepSpec, value_text
from nerftune.tracking import TrackingTarget


def trial_resources(prepared: Prepared, on_cluster: bool) -> dict[str, float]:
    """What each trial asks Ray for: its CPUs, and its GPU share where there are GPUs (or may be, on a cluster)."""
    resources = {"cpu": prepared.spec.resources.cpu}
    share = prepared.gpu_per_trial
    if share and (prepared.gpus or on_cluster):
        resources["gpu"] = share
    return {**resources, **prepared.spec.resources.custom}


def concurrency(prepared: Prepared, cpus: int) -> int:
    """How many trials run at once on this machine: what its GPUs and `cpus` CPUs hold, the spec's limit, and no
    more than the sweep has."""
    resources = trial_resources(prepared, on_cluster=False)
    held = [math.floor(cpus / resources["cpu"] + 1e-9), prepared.spec.trial_count]
    if "gpu" in resources:
        held.append(math.floor(len(prepared.gpus) / resources["gpu"] + 1e-9))
    if prepared.spec.max_concurrent_trials:
        held.append(prepared.spec.max_concurrent_trials)
    return max(1, min(held))


def source_name(prepared: Prepared) -> str:
    """The sweep that trains a `warm_start` source, beside the sweep itself."""
    return f"{prepared.name}-source"


def describe_plan(prepared: Prepared, on_cluster: bool, target: TrackingTarget | None) -> str:
    spec = prepared.spec
    replicated = (
        f" ({spec.configuration_count} configurations x {len(spec.replicate_values)} {spec.replicates} replicates)"
        if spec.replicates
        else ""
    )
    lines = [
        f"sweep {prepared.name}: {spec.trial_count} trials{replicated}, {spec.search.algorithm} search "
        f"(seed {spec.search.seed}), metric {spec.metric.name} ({spec.metric.mode})",
        *_data_lines(prepared),
        "search dimensions:",
    ]
    for name, dim in spec.space.items():
        if dim.values is not None:
            shown = ", ".join(map(value_text, dim.values)) + ("" if len(dim.values) > 1 else "  (fixed)")
        else:
            shown = f"{dim.type} in [{dim.min:g}, {dim.max:g}]" + (" log" if dim.log else "")
        lines.append(f"  {name}: {shown}")
    if spec.replicates:
        lines.append(precision_line(len(spec.replicate_values), spec.replicates))
        costly = _costly_questions(spec)
        if costly:
            tolerance = metric_amount(spec.metric.smallest_difference(), spec.metric.name)
            lines.append(enough_line(len(spec.replicate_values), spec.replicates, costly, tolerance))
    if FRAME_SUBSET in spec.space:
        lines.append(_frame_subset_line(prepared))
    if spec.finetune:
        lines.append(
            f"fine-tuning: after its `steps`, each trial trains `{FINETUNE_STEPS}` more on {spec.finetune.target} "
            "images with its geometry frozen (colour only); steps count both stages"
        )
    if spec.warm_start is not None:
        values = ", ".join(f"{k} {value_text(v)}" for k, v in spec.source_spec().fixed.items())
        lines.append(
            f"warm start: first one source model ({values}) as sweep {source_name(prepared)}; "
            f"every `{INIT_FROM}: {SOURCE}` trial starts from its last checkpoint"
        )
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
    lines.append(f"resources per trial: {_resources_text(prepared, on_cluster)}")
    lines.append(f"devices: {_devices_text(prepared, on_cluster)}")
    lines.append(training_text(prepared, on_cluster))
    if spec.render:
        lines.append(_render_line(prepared))
    fast = plan_text(spec.fast_path, *prepared.cpu_compiling)
    lines.append(f"profile: {spec.profile}; fast path: {fast}; output: {prepared.experiment_dir}")
    lines.append(f"tracking: MLflow experiment {target.experiment} at {target.uri}" if target else "tracking: off")
    return "\n".join(lines)


def training_text(prepared: Prepared, on_cluster: bool) -> str:
    """The most training the sweep can do, and on this machine's GPUs with a measured packing how long it takes at
    most: trials start in order as others end, so with c at once and each at most T long, none ends later than
    ceil(trials / c) x T (lighter configurations, and GPUs packed less densely than measured, are faster)."""
    spec = prepared.spec
    growth = prepared.growth  # a study that grows trains its added trials only
    trials, steps = growth.round.count if growth else spec.trial_count, spec.max_steps
    new = "new " if growth else ""
    line = f"training: at most {trials * steps:,} steps in all ({trials} {new}trials x up to {steps:,})"
    packing = prepared.packing
    trial_speed = packing.trial_speed() if packing else 0.0
    if trial_speed <= 0 or on_cluster or not prepared.gpus:
        return line
    at_once = concurrency(prepared, cpu_count())
    rounds = math.ceil(trials / at_once)
    source = " after the warm start's source" if spec.warm_start is not None else ""
    longest = duration_text(rounds * steps / trial_speed)
    return (
        f"{line}, at most {longest} on these GPUs{source}: {rounds} round{'s' * (rounds > 1)} "
        f"of up to {at_once} trials at once, each at {trial_speed:.1f} steps/s or faster (measured for the heaviest "
        f"configuration of {packing.configuration.get('method', 'the spec')}; compiling, scoring and renders "
        "come on top)"
    )


def _render_line(prepared: Prepared) -> str:
    render = prepared.spec.render
    views = len(prepared.largest_scene.camera_paths["camera_path"])
    when = "" if render.trials == "each" else " after the sweep"
    extras = " and ".join(what for what, on in (("the data's crop", render.crop), ("an mp4 each", render.video)) if on)
    return (
        f"novel views: {views} ({prepared.camera_paths_name}) of {rendered_trials_text(prepared.spec)}{when}"
        + (f", with {extras}" if extras else "")
    )


def _costly_questions(spec: SweepSpec) -> list[str]:
    """What the report will say how many of are enough: the frames (steps) the study varies, and the steps by the
    learning curves where every milestone scores the whole test set."""
    varied = [
        name
        for name in COSTLY_DIMENSIONS
        if name in spec.configuration_space and (spec.space[name].values is None or len(spec.space[name].values) > 1)
    ]
    if "steps" not in varied and spec.eval.every and not spec.eval.max_images and not spec.finetune:
        varied.append("steps (by the learning curves)")
    return varied


def _frame_subset_line(prepared: Prepared) -> str:
    """What the `frame_subset` values give: how many different sets of training frames at each frame count (a count
    that takes the whole pool has one, whatever the value)."""
    subsets = prepared.spec.space[FRAME_SUBSET].choices
    frames = prepared.spec.space["frames"].choices
    line = f"{FRAME_SUBSET}: 0 takes evenly spaced frames, the others one frame from each stretch of the training pool"
    if not subsets or not frames:
        return line
    distinct = {
        value: max(
            len({tuple(scene.dataset.train_indices(value, int(subset))) for subset in subsets})
            for scene in prepared.scenes.values()
        )
        for value in frames
    }
    counts = ", ".join(f"{n} at frames {value_text(value)}" for value, n in distinct.items())
    same = [value_text(value) for value, n in distinct.items() if n == 1 < len(subsets)]
    warning = f" (at frames {', '.join(same)} all {len(subsets)} take the same frames)" if same else ""
    return f"{line}; distinct training sets: {counts}{warning}"


def _data_lines(prepared: Prepared) -> list[str]:
    several = len(prepared.scenes) > 1
    lines = [f"data: {len(prepared.scenes)} scenes, each with its own test set:"] if several else []
    for scene in prepared.scenes.values():
        dataset = scene.dataset
        downscaled = f", downscaled from {scene.downscaled_from}" if scene.downscaled_from else ""
        lines.append(
            f"{f'  {scene.name}: ' if several else 'data: '}{scene.data_dir} ({len(dataset.frames)} frames of "
            f"{'x'.join(map(str, dataset.image_size))}{downscaled}: "
            f"{len(dataset.pool)} in the training pool, {len(dataset.test_indices)} test frames, "
            f"test hash {dataset.test_hash})"
        )
    return lines


def _resources_text(prepared: Prepared, on_cluster: bool) -> str:
    resources = ", ".join(f"{v:g} {k}" for k, v in trial_resources(prepared, on_cluster).items())
    if prepared.spec.resources.gpu != "auto":
        return resources
    if prepared.packing is None:
        return (
            f"{resources}, gpu auto: measured before launch (the heaviest configuration trains alone, then as 2 "
            f"and 4 copies at once; kept in {prepared.experiment_dir.name}/packing.json)"
        )
    return f"{resources} (gpu auto: {prepared.packing.describe()})"


def _devices_text(prepared: Prepared, on_cluster: bool) -> str:
    limit = prepared.spec.max_concurrent_trials
    if on_cluster:
        return f"a Ray cluster; concurrent trials: {limit or 'as its resources allow'}"
    names = ", ".join(sorted({gpu.name for gpu in prepared.gpus}))
    mps = ", NVIDIA MPS on" if prepared.mps else ""
    gpus = f"{len(prepared.gpus)} GPU(s) ({names}{mps})" if prepared.gpus else "CPU only"
    cpus = cpu_count()
    if prepared.gpus and prepared.gpu_per_trial is None:
        return f"{gpus}, {cpus} CPUs; concurrent trials: as the measured packing allows"
    return f"{gpus}, {cpus} CPUs; concurrent trials: {concurrency(prepared, cpus)}" + (
        f" (max_concurrent_trials {limit})" if limit else ""
    )
