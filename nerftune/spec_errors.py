"""Turning a spec file's text into a mapping, and a schema's validation errors into one line naming the field."""

from __future__ import annotations

from pathlib import Path
from types import UnionType
from typing import Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from nerftune.dimensions import FieldProblem
from nerftune.errors import InputError
from nerftune.spec_sections import NAME_PATTERN, Dimension

# pydantic's error types (by prefix) that say a value has the wrong type, and what the value must be instead
TYPE_WORDS = {
    "int_": "a whole number",
    "float_": "a number",
    "bool_": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
}
BOUND_WORDS = {
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "too_short": "must list at least {min_length} value(s)",
    "too_long": "must list at most {max_length} value(s)",
}


def yaml_mapping(text: str, source: str | Path) -> dict:
    """The spec's YAML as a mapping; raises `InputError` for bad syntax or another shape."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(source, where, f"invalid YAML: {problem}", "fix the syntax") from None
    if not isinstance(raw, dict):
        raise InputError(source, "", "a spec is a YAML mapping", "start from search_spaces/demo.yaml")
    return raw


def to_input_error(error: ValidationError, source: str | Path, raw: dict, root: type[BaseModel]) -> InputError:
    """The first validation problem as one line: the field, the problem and what to do."""
    first = error.errors()[0]
    if first["loc"][:2] == ("data", 0) and not isinstance(raw.get("data"), list):
        first["loc"] = ("data", *first["loc"][2:])  # one dataset, written without a list: no index to show
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, FieldProblem):
        return InputError(source, cause.field, cause.problem, cause.hint)
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    field = field or "(top level)"
    if first["type"] == "extra_forbidden":
        hint = f"valid keys here: {_valid_keys(first['loc'], root)}"
        if str(first["loc"][0]) == "space":
            hint += "; a fixed mapping is written {value: {...}}"
        return InputError(source, field, "unknown key", hint)
    if first["type"] == "missing":
        return InputError(source, field, "required field is missing", "add it, as search_spaces/demo.yaml does")
    if first["loc"] == ("metric", "name") and isinstance(raw.get("metric"), str):
        field = "metric"  # written as the shorthand `metric: NAME`
    return InputError(source, field, f"{_problem(first)} (got {first.get('input')!r})", "")


def _problem(error: dict) -> str:
    """The problem in the house's words where pydantic's own would read as its internals ("Input should be ...")."""
    ctx, kind = error.get("ctx", {}), error["type"]
    if kind == "literal_error":
        return f"must be one of {ctx['expected'].replace(' or ', ', ')}"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        return "must start with a letter or a digit and hold only letters, digits, '_', '.' and '-': it names a folder"
    if kind in BOUND_WORDS:
        return BOUND_WORDS[kind].format(**ctx)
    for prefix, wanted in TYPE_WORDS.items():
        if kind.startswith(prefix):
            return f"must be {wanted}"
    return error["msg"].removeprefix("Value error, ")


def _valid_keys(loc: tuple, root: type[BaseModel]) -> str:
    """The keys the schema allows where `loc` points (a space entry: a dimension's)."""
    model = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # an item of a list: its model is the list's
        annotation = model.model_fields.get(str(part))
        target = getattr(annotation, "annotation", None)
        if get_origin(target) is list or get_origin(target) in (Union, UnionType):  # list[X], X | None
            target = next((t for t in get_args(target) if t is not type(None)), None)
        if isinstance(target, type) and issubclass(target, BaseModel):
            model = target
        elif str(loc[0]) == "space":
            model = Dimension
    return ", ".join(model.model_fields)
