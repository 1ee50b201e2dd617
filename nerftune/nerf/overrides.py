"""Dotted overrides of a nerfstudio config (`pipeline.model.hidden_dim: 64`): where they lead, what they may be.

Paths start at the `TrainerConfig` and walk dataclass attributes and dict keys alike. A config is first described
as a flat *schema* (`{path: {"kind", "choices", "fields"}}`); an override is checked against the schema and then
set. The same schema, cached per method (`methods.method_facts`), lets a spec be checked before launch without
importing nerfstudio. This module imports nothing of nerfstudio.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Literal

MAX_DEPTH = 12  # config trees are shallow; this only guards against cycles through odd objects

Schema = dict[str, dict[str, Any]]  # "" is the root; every other key is a dotted path


class OverrideError(ValueError):
    """A dotted override that does not fit the method's config (unknown field or wrong type)."""


def describe(config: Any) -> Schema:
    """The flat schema of a config tree: every node's kind, a Literal's choices, and a container's fields."""
    schema: Schema = {}
    _describe(config, "", None, schema, 0)
    return schema


def _describe(value: Any, path: str, annotation: Any, schema: Schema, depth: int) -> None:
    node: dict[str, Any] = {"kind": field_kind(value)}
    if typing.get_origin(annotation) is Literal:
        node["choices"] = [
            c for c in typing.get_args(annotation) if c is None or isinstance(c, (bool, int, float, str))
        ]
    schema[path] = node
    if depth >= MAX_DEPTH:
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = _type_hints(value)
        names = [f.name for f in dataclasses.fields(value) if not f.name.startswith("_")]
        node["fields"] = names
        for name in names:
            _describe(getattr(value, name), _join(path, name), hints.get(name), schema, depth + 1)
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
        node["fields"] = list(value)
        for key, item in value.items():
            _describe(item, _join(path, key), None, schema, depth + 1)


def field_kind(value: Any) -> str:
    """What a field holds, as the override rules see it."""
    if value is None:
        return "none"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return "config"
    if isinstance(value, Path):
        return "path"
    for kind in (bool, int, float, str, tuple, list, dict):  # bool before int: a bool is an int to Python
        if isinstance(value, kind):
            return kind.__name__
    return type(value).__name__


def check(schema: Schema, path: str, value: Any) -> Any:
    """`value` converted for the field at `path` (lists to tuples, ints to floats, ...); raises `OverrideError`."""
    parts = path.split(".")
    for depth in range(1, len(parts) + 1):
        node = schema.get(".".join(parts[:depth]))
        if node is None or (depth < len(parts) and "fields" not in node):
            parent = schema[".".join(parts[: depth - 1])]
            what = "key" if parent["kind"] == "dict" else "field"
            where = ".".join(parts[: depth - 1]) or "the trainer config"
            raise OverrideError(f"{where} has no {what} {parts[depth - 1]!r}{_listed(parent)}")
    return coerce(path, node["kind"], node.get("choices"), value)


def coerce(path: str, kind: str, choices: list | None, value: Any) -> Any:
    if choices is not None:
        if value not in choices:
            raise OverrideError(f"{path} must be one of {', '.join(map(repr, choices))}, not {value!r}")
        return value
    if kind == "none" or value is None:
        return value
    given = field_kind(value)
    if (kind == "bool") != (given == "bool"):
        raise OverrideError(f"{path} is {_kind_text(kind)}, not {_kind_text(given)} ({value!r})")
    if kind == "float" and given == "int":
        return float(value)
    if kind == "tuple" and given == "list":
        return tuple(value)
    if kind == "path" and given == "str":
        return Path(value)
    if kind in ("list", "tuple") and given in ("list", "tuple"):
        return value
    if kind != given:
        raise OverrideError(f"{path} is {_kind_text(kind)}, not {_kind_text(given)} ({value!r})")
    return value


def set_path(config: Any, path: str, value: Any) -> None:
    """Set a dotted field of a live config, checked and converted as `check` does."""
    converted = check(describe(config), path, value)
    *parents, key = path.split(".")
    node = config
    for part in parents:
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    if isinstance(node, dict):
        node[key] = converted
    else:
        setattr(node, key, converted)


def get_path(config: Any, path: str) -> Any:
    for part in path.split("."):
        config = config[part] if isinstance(config, dict) else getattr(config, part)
    return config


def has_path(config: Any, path: str) -> bool:
    return path in describe(config)


def _type_hints(value: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(type(value))
    except Exception:  # forward references nerfstudio never resolves: fall back to the values' own kinds
        return {}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _listed(node: dict[str, Any]) -> str:
    fields = node.get("fields")
    if not fields:
        return ""
    return f"; {'keys' if node['kind'] == 'dict' else 'fields'}: {', '.join(fields)}"


def _kind_text(kind: str) -> str:
    return {"bool": "a boolean", "int": "an integer", "float": "a number", "str": "a string"}.get(kind, kind)
