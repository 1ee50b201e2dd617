"""The dimensions of a sweep's space that nerftune itself knows (not nerfstudio settings), and how their values are
checked: the standard ones (frames, seed, method, steps) and the study dimensions (scene, frame_subset, poses,
masks, mask_error, finetune_steps, init_from). `spec.py` re-exports the names."""

from __future__ import annotations

import difflib
import json
from typing import Any

REQUIRED_DIMENSIONS = ("steps",)
DEFAULT_DIMENSIONS: dict[str, Any] = {"frames": 1.0, "seed": 0, "method": "nerfacto"}
CONFIGURATION = "configuration"  # a trial's configuration number (the searcher's; shared by its replicates)
SCENE = "scene"  # the dimension of a study over several datasets: their names (always a stratum)
# which `frames` frames a trial trains on: 0 the evenly spaced ones, 1, 2, ... others, one drawn per stretch of the pool
FRAME_SUBSET = "frame_subset"
POSES = "poses"  # where a trial's poses come from: SfM on all frames, or on its own training frames
POSE_SOURCES = ("global", "per_subset")
MASKS = "masks"  # whether training ignores the pixels outside each frame's mask (true) or sees every pixel (false)
MASK_ERROR = "mask_error"  # masks of chosen training frames corrupted: {frames, kind, size}, or none
MASK_ERROR_KINDS = ("none", "corner", "dilate", "erode", "shift")  # none: the clean baseline, split alike
FINETUNE_STEPS = "finetune_steps"  # steps of the spec's `finetune` stage, after the RGB steps (0: none)
INIT_FROM = "init_from"  # a warm start: the trial or checkpoint whose weights a trial starts from (`warm_start.py`)
SOURCE = "source"  # the `init_from` value of the model a sweep with a `warm_start` block trains first
COSTLY_DIMENSIONS = ("frames", "steps", FINETUNE_STEPS)  # the more, the dearer: how many are enough is a question
STUDY_DIMENSIONS = (SCENE, FRAME_SUBSET, POSES, MASKS, MASK_ERROR, FINETUNE_STEPS, INIT_FROM)
# nerfstudio's trainer settings that a spec names as they are (every other nerfstudio field by its dotted path):
# those that shape training; the trainer's paths, logging and checkpoint cadence are nerftune's to set
TRAINER_SETTINGS = ("mixed_precision", "use_grad_scaler", "gradient_accumulation_steps")


def is_nerfstudio_setting(name: str) -> bool:
    """Whether a dimension of the space is a nerfstudio config field (a dotted path or a trainer setting)."""
    return "." in name or name in TRAINER_SETTINGS


NAMED_DIMENSIONS = (*DEFAULT_DIMENSIONS, *REQUIRED_DIMENSIONS, *STUDY_DIMENSIONS, *TRAINER_SETTINGS)
DIMENSION_KINDS = (  # `scene` is not among them: a study over several datasets lists them under `data`
    f"use {', '.join(n for n in NAMED_DIMENSIONS if n not in (SCENE, *TRAINER_SETTINGS))}, a dotted nerfstudio "
    f"config path like pipeline.model.hidden_dim, or one of {', '.join(TRAINER_SETTINGS)}"
)


def is_dimension(name: str) -> bool:
    """Whether a space may name `name`: one of nerftune's dimensions or a nerfstudio setting."""
    return name in NAMED_DIMENSIONS or is_nerfstudio_setting(name)


def unknown_dimension_hint(name: str) -> str:
    """What to do about an unknown dimension: the name it most likely misspells (`stepz`: steps), and every kind."""
    close = difflib.get_close_matches(name, NAMED_DIMENSIONS, n=1, cutoff=0.75)
    return f"did you mean `{close[0]}`? Or {DIMENSION_KINDS}" if close else DIMENSION_KINDS


class FieldProblem(ValueError):
    """A validation problem that knows its own field path (raised inside model validators)."""

    def __init__(self, field: str, problem: str, hint: str = ""):
        super().__init__(problem)
        self.field, self.problem, self.hint = field, problem, hint


def check_standard_dimension(name: str, dim) -> None:
    field = f"space.{name}"
    if name == "method":
        if dim.values is None or not all(isinstance(v, str) for v in dim.values):
            raise FieldProblem(field, "methods are names", "e.g. `method: {values: [nerfacto, vanilla-nerf]}`")
    elif name == POSES:
        if dim.values is None or not set(dim.values) <= set(POSE_SOURCES):
            raise FieldProblem(
                field, f"poses come from {' or '.join(POSE_SOURCES)}", "e.g. `poses: {values: [global, per_subset]}`"
            )
    elif name == MASKS:
        if dim.values is None or not all(isinstance(v, bool) for v in dim.values):
            raise FieldProblem(field, "masks are on or off", "e.g. `masks: {values: [true, false]}`")
    elif name == INIT_FROM:
        if dim.values is None or not all(isinstance(v, str) and v for v in dim.values):
            raise FieldProblem(field, "warm starts name trials", "e.g. `init_from: sweeps/all-frames/train_trial_0001`")
    elif name == MASK_ERROR:
        for value in dim.choices or [None]:
            _check_mask_error(field, value)
    elif name in ("steps", "seed", FINETUNE_STEPS, FRAME_SUBSET):
        low = 1 if name == "steps" else 0
        values = dim.choices or [dim.min, dim.max]
        if dim.values is None and dim.type != "int":
            raise FieldProblem(field, f"{name} are whole numbers", "use `type: int`")
        if not all(is_int(v) and v >= low for v in values):
            raise FieldProblem(field, f"{name} must be whole numbers >= {low}", f"got {values}")
    elif name == "frames":
        values = dim.choices or ([int(dim.min), int(dim.max)] if dim.type == "int" else [dim.min, dim.max])
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise FieldProblem(field, f"{v!r} is not a frame count", "give counts (12) or fractions (0.5)")
            if isinstance(v, float) and not 0 < v <= 1 or isinstance(v, int) and v < 1:
                raise FieldProblem(field, f"{v!r} is not a frame count", "counts are >= 1, fractions in (0, 1]")


def check_replicates_and_strata(replicates: str | None, stratify: list[str], searched: dict) -> None:
    """`replicates` names a searched dimension with listed values; each stratum, another such dimension."""
    if replicates is not None:
        dim = searched.get(replicates)
        if dim is None:
            raise FieldProblem(
                "replicates",
                f"{replicates!r} is not a searched dimension",
                f"list its values under space, e.g. `{replicates}: {{values: [0, 1, 2]}}`",
            )
        if dim.values is None:
            raise FieldProblem("replicates", "replicates need listed values", "e.g. `seed: {values: [0, 1, 2]}`")
    check_grouping("stratify", stratify, replicates, searched)


def check_frame_subsets(searched: dict, replicates: str | None, stratify: list[str], scheduler: str, search: str):
    """Searched frame subsets are draws to average over, not settings to pick: a searcher or a scheduler that favours
    the luckier ones would bias every comparison made over them."""
    if FRAME_SUBSET not in searched or replicates == FRAME_SUBSET:
        return
    hint = f"or make them the replicates (`replicates: {FRAME_SUBSET}`)"
    if search == "tpe":
        problem = "tpe would favour the luckier frame subsets"
        raise FieldProblem("search.algorithm", problem, f"use grid or random, {hint}")
    if scheduler == "asha" and FRAME_SUBSET not in stratify:
        raise FieldProblem(
            "scheduler",
            "ASHA would stop the unluckier frame subsets early, and only the luckier would be compared",
            f"add {FRAME_SUBSET} to stratify, use `scheduler: {{type: none}}`, {hint}",
        )


def check_grouping(field: str, names: list[str], replicates: str | None, searched: dict) -> None:
    """`stratify` and `render.per` group trials by the values of searched dimensions: each must list its values, and
    none may be the replicate dimension (its values are the same settings)."""
    listed = [n for n, d in searched.items() if d.values is not None and n != replicates]
    for name in names:
        dim = searched.get(name)
        if name == replicates:
            raise FieldProblem(
                field,
                f"{name!r} is the replicate dimension: its values are the same settings",
                "name a dimension whose values you compare, e.g. frames",
            )
        if dim is None or dim.values is None:
            problem = (
                "is not a searched dimension with listed values" if dim is None else "is a continuous distribution"
            )
            raise FieldProblem(
                field,
                f"{name!r} {problem}",
                (f"give `{name}` as `values: [...]`, or " if dim is not None else "")
                + (f"name one of {', '.join(listed)}" if listed else "list a dimension's values under space first"),
            )


def check_source_values(values: dict[str, Any], space: dict) -> None:
    """`warm_start`: the source model's own values, of dimensions of the space; the space's ranges need one."""
    for name, value in values.items():
        if name not in space or name in (INIT_FROM, SCENE, FINETUNE_STEPS):
            raise FieldProblem(
                f"warm_start.{name}",
                "is not a dimension the source model can take",
                "give the source's frames, steps, seed, method or a dotted setting of the space",
            )
        if isinstance(value, (list, dict)) and not is_nerfstudio_setting(name):
            raise FieldProblem(f"warm_start.{name}", "the source is one model: give one value", f"e.g. `{name}: 1.0`")
        from nerftune.spec_sections import Dimension

        try:
            check_standard_dimension(name, Dimension(values=[value]))
        except FieldProblem as problem:
            raise FieldProblem(f"warm_start.{name}", problem.problem, problem.hint) from None
    ranged = [name for name, dim in space.items() if dim.values is None and name not in values]
    if ranged:
        raise FieldProblem(
            f"warm_start.{ranged[0]}", f"the space searches a range of {ranged[0]}", "give the source's own value"
        )


def _check_mask_error(field: str, value: Any) -> None:
    example = "e.g. `mask_error: {values: [{frames: 1, kind: none}, {frames: 1, kind: corner, size: 0.15}]}`"
    if value in (None, "none"):
        return
    keys = {"frames", "kind"} if isinstance(value, dict) and value.get("kind") == "none" else {"frames", "kind", "size"}
    if not isinstance(value, dict) or not keys <= set(value) <= {"frames", "kind", "size"}:
        raise FieldProblem(field, f"{json.dumps(value)} is not a mask error (frames, kind, size) or none", example)
    if not is_int(value["frames"]) or value["frames"] < 1:
        raise FieldProblem(field, f"frames is {value['frames']!r}; corrupt 1 or more frames", example)
    if value["kind"] not in MASK_ERROR_KINDS:
        raise FieldProblem(field, f"kind {value['kind']!r} is unknown", f"kinds: {', '.join(MASK_ERROR_KINDS)}")
    size = value.get("size", 0)
    if value["kind"] != "none" and (isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 < size <= 1):
        raise FieldProblem(field, f"size is {size!r}", "a fraction of the mask's extent in (0, 1]")


def is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and float(value).is_integer()


def total_steps(config: dict[str, Any]) -> int:
    """A trial's steps in all: its RGB steps and its fine-tuning steps, as milestones, ASHA and progress count them."""
    return int(config["steps"]) + int(config.get(FINETUNE_STEPS) or 0)
