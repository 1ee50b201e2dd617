"""The spec's shorthands, rewritten into its full form before validation: several datasets make the dimension
`scene`, `finetune.steps` the dimension `finetune_steps`, a `warm_start` block `init_from: source`, and a scalar in
`space` a fixed value."""

from __future__ import annotations

from typing import Any

from nerftune.dimensions import FINETUNE_STEPS, INIT_FROM, SCENE, SOURCE, FieldProblem
from nerftune.spec_sections import scene_name


def scenes_as_dimension(raw: Any) -> Any:
    """Several datasets make the dimension `scene` (their names), a stratum: configurations are compared only
    on the same scene, and each scene keeps its own test set."""
    if not isinstance(raw, dict) or "data" not in raw:
        return raw
    entries = [{"path": e} if isinstance(e, str) else e for e in as_list(raw["data"])]
    raw = {**raw, "data": entries}
    if len(entries) < 2 or not all(isinstance(e, dict) and isinstance(e.get("path"), str) for e in entries):
        return raw  # one scene, or a malformed entry that the schema reports
    names = [scene_name(e) for e in entries]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        raise FieldProblem("data", f"two datasets are both named {twice!r}", "give each a `name:`")
    space = raw.get("space")
    if isinstance(space, dict):
        if SCENE in space:
            raise FieldProblem(f"space.{SCENE}", "the scenes come from `data`", f"remove `{SCENE}` from space")
        raw["space"] = {**space, SCENE: {"values": names}}
    stratify = as_list(raw.get("stratify", []))
    if SCENE not in stratify and raw.get("replicates") != SCENE:
        raw["stratify"] = [*stratify, SCENE]
    return raw


def finetune_steps_as_dimension(raw: Any) -> Any:
    """`finetune.steps` becomes the dimension `finetune_steps` (a list of them is searched like any other)."""
    block, space = (raw.get("finetune"), raw.get("space")) if isinstance(raw, dict) else (None, None)
    if not isinstance(space, dict):
        return raw
    if not isinstance(block, dict):
        if FINETUNE_STEPS in space and block is None:
            raise FieldProblem(
                f"space.{FINETUNE_STEPS}", "there is no fine-tuning stage", "add `finetune: {target: segmentation}`"
            )
        return raw
    if "steps" in block:
        if FINETUNE_STEPS in space:
            raise FieldProblem("finetune.steps", f"given twice: here and as space.{FINETUNE_STEPS}", "keep one of them")
        space = {**space, FINETUNE_STEPS: block["steps"]}
    elif FINETUNE_STEPS not in space:
        raise FieldProblem("finetune.steps", "required field is missing", "e.g. `steps: 300` or `[0, 150, 300]`")
    return {**raw, "space": space, "finetune": {k: v for k, v in block.items() if k != "steps"}}


def warm_start_as_init_from(raw: Any) -> Any:
    """A `warm_start` block (the source model this sweep trains first) starts every trial from it: `init_from:
    source`, unless `init_from` lists `source` among other starts itself."""
    space = raw.get("space") if isinstance(raw, dict) else None
    if not isinstance(space, dict):
        return raw
    if raw.get("warm_start") is None:
        if SOURCE in map(str, as_list(space.get(INIT_FROM, []))):
            raise FieldProblem(
                f"space.{INIT_FROM}",
                f"`{SOURCE}` needs a `warm_start` block",
                "e.g. `warm_start: {frames: 1.0, steps: 3000}`",
            )
        return raw
    if INIT_FROM not in space:
        return {**raw, "space": {**space, INIT_FROM: SOURCE}}
    given = space[INIT_FROM]
    values = given.get("values", []) if isinstance(given, dict) else as_list(given)
    if SOURCE not in values:
        raise FieldProblem(
            f"space.{INIT_FROM}",
            "`warm_start` trains a source that no trial starts from",
            f"list `{SOURCE}` among its values, or drop it",
        )
    return raw


def dimension_shorthand(value: Any) -> Any:
    """`12` and `{value: [64, 32]}` are fixed values, `[6, 12]` is a list of values; a mapping is a `Dimension`."""
    if isinstance(value, dict):
        return {"values": [value["value"]]} if set(value) == {"value"} else value
    return {"values": value if isinstance(value, list) else [value]}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]
