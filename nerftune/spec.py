"""The sweep spec: a YAML file validated by a typed schema. Nothing else in nerftune parses YAML.

    name: demo
    data: synthetic:id-card            # or a nerfstudio dataset folder (relative to this file)
    metric: psnr                       # or {name: psnr, mode: max}
    profile: tiny                      # tiny: for CPUs; small: quick GPU studies; default: nerfstudio's settings
    space:                             # what to vary: values, a distribution, or a fixed scalar
      frames: {values: [6, 12, 24]}    # counts, or fractions of the training pool
      pipeline.model.num_proposal_samples_per_ray: {values: [[64, 32], [32, 16]]}   # lists and mappings too
      pipeline.model.proposal_weights_anneal_max_num_iters: {value: 500}          # `value`: one fixed value
      seed: {values: [0, 1]}
      method: nerfacto
      steps: 1000
      pipeline.model.hidden_dim: {values: [16, 32]}
      pipeline.optimizers.fields.optimizer.lr: {type: float, min: 1.0e-3, max: 3.0e-2, log: true}
    replicates: seed                   # trials differing only in seed form one configuration, judged on their mean
    stratify: frames                   # the scheduler compares configurations only within the same frame count
    search: {algorithm: tpe, seed: 0}  # tpe | random | grid
    scheduler: {type: asha, grace_period: 200, reduction_factor: 2}   # or {type: none}
    num_samples: 8
    max_concurrent_trials: 2
    resources: {cpu: 1, gpu: 1}        # gpu: 0.25 = 4 trials per GPU, auto = measured; ignored where there is none
    fast_path: auto                    # compiled hash grid + TF32 on CUDA; true = on the CPU too; false = never
    tracking: {checkpoints: best}      # MLflow; {uri: http://host:5000} for a server, {enabled: false} for none
    render: {circles: {radii: [0.2, 0.4], distances: [1.0, 1.6], views: 9}, trials: best, best_k: 3}

Every error is an `InputError` naming the file, the field and what to do.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nerftune.dimensions import (  # noqa: F401 (the dimension names are the spec's, re-exported)
    CONFIGURATION,
    DEFAULT_DIMENSIONS,
    MASK_ERROR,
    MASKS,
    POSES,
    REQUIRED_DIMENSIONS,
    SCENE,
    STUDY_DIMENSIONS,
    FieldProblem,
    check_standard_dimension,
    is_int,
)
from nerftune.errors import InputError
from nerftune.outcomes import METRIC_MODES

SYNTHETIC_PREFIX = "synthetic:"
SYNTHETIC_SCENES = ("id-card",)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def value_text(value: Any) -> str:
    """A spec value as people read it in results.csv, MLflow and the plan: lists and mappings as JSON."""
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _plain(value: Any) -> bool:
    """YAML scalars, and lists and mappings of them: what a nerfstudio config field can be set to from a spec."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(map(_plain, value))
    return isinstance(value, dict) and all(isinstance(k, str) and _plain(v) for k, v in value.items())


class Dimension(_Strict):
    """One searched value: a list of `values`, or an `int`/`float` distribution over [min, max] (log-uniform: `log`).

    A value may be a list or a mapping (nerfacto's `num_proposal_samples_per_ray` is a pair,
    `proposal_net_args_list` a list of mappings): `{values: [[64, 32], [32, 16]]}` searches two pairs.
    """

    values: list[Any] | None = None
    type: Literal["int", "float"] | None = None
    min: float | None = None
    max: float | None = None
    log: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> "Dimension":
        if self.values is not None:
            if self.type is not None or self.min is not None or self.max is not None:
                raise ValueError("give either `values` or `type`/`min`/`max`, not both")
            if not self.values:
                raise ValueError("`values` is empty: list at least one value")
            for index, value in enumerate(self.values):
                if not _plain(value):
                    raise ValueError(f"value {index} ({value!r}) is not a number, string, list or mapping")
            if len(set(map(value_text, self.values))) != len(self.values):
                raise ValueError("`values` lists a value twice")
            return self
        if self.type is None or self.min is None or self.max is None:
            raise ValueError("give `values: [...]` or all of `type` (int|float), `min` and `max`")
        if not self.min < self.max:
            raise ValueError(f"empty range: min ({self.min:g}) must be less than max ({self.max:g})")
        if self.log and self.min <= 0:
            raise ValueError("a log distribution needs min > 0")
        if self.type == "int" and not (float(self.min).is_integer() and float(self.max).is_integer()):
            raise ValueError("an int distribution needs whole-number min and max")
        return self

    @property
    def choices(self) -> list[Any]:
        """Every value this dimension can take when it is a list; a distribution has none."""
        return list(self.values) if self.values is not None else []


class DataSpec(_Strict):
    """Where the frames come from and how the fixed test set is chosen."""

    path: str
    name: str | None = Field(
        None, pattern=NAME_PATTERN, description="the scene's name in a study of several (default: the folder's name)"
    )
    test_every: int = Field(8, ge=2, description="every N-th frame is a test frame unless split_indices.json exists")
    scene: dict[str, Any] = Field(default_factory=dict, description="options of a synthetic scene (frames, width...)")

    @property
    def synthetic_scene(self) -> str | None:
        return self.path[len(SYNTHETIC_PREFIX) :] if self.path.startswith(SYNTHETIC_PREFIX) else None

    @property
    def scene_name(self) -> str:
        return _scene_name({"path": self.path, "name": self.name})

    @field_validator("path")
    @classmethod
    def _known_scene(cls, path: str) -> str:
        if path.startswith(SYNTHETIC_PREFIX) and path[len(SYNTHETIC_PREFIX) :] not in SYNTHETIC_SCENES:
            raise ValueError(f"unknown synthetic scene {path!r}; available: {', '.join(SYNTHETIC_SCENES)}")
        return path


class MetricSpec(_Strict):
    name: Literal[tuple(METRIC_MODES)] = "psnr"  # type: ignore[valid-type]
    mode: Literal["max", "min"] | None = None

    @model_validator(mode="after")
    def _natural_mode(self) -> "MetricSpec":
        natural = METRIC_MODES[self.name]
        if self.mode is None:
            object.__setattr__(self, "mode", natural)
        elif self.mode != natural:
            raise ValueError(f"{self.name} is better when higher/lower: its mode is {natural!r}, not {self.mode!r}")
        return self


class SearchSpec(_Strict):
    algorithm: Literal["tpe", "random", "grid"] = "tpe"
    seed: int = 0


class SchedulerSpec(_Strict):
    type: Literal["asha", "none"] = "asha"
    grace_period: int = Field(200, ge=1, description="steps every trial trains before it can be stopped")
    reduction_factor: float = Field(2.0, gt=1.0)


class ResourcesSpec(_Strict):
    cpu: float = Field(1.0, gt=0)
    gpu: float | Literal["auto"] = Field(
        1.0, description="GPUs per trial: 0.25 = four trials share a GPU; auto = as many as measured to pay"
    )

    @field_validator("gpu")
    @classmethod
    def _not_negative(cls, value: float | str) -> float | str:
        if value != "auto" and value < 0:
            raise ValueError("must be a share of a GPU (0.25, 1, 2, ...) or auto")
        return value


class EvalSpec(_Strict):
    every: int = Field(0, ge=0, description="evaluate every N steps as well as at the ASHA rungs and the end; 0 = not")
    max_images: int = Field(
        0, ge=0, description="at most this many test images at intermediate milestones; the last one scores all"
    )
    train_log_every: int = Field(50, ge=1, description="steps between train loss reports")


class CheckpointSpec(_Strict):
    keep: int = Field(2, ge=1, description="checkpoints kept per trial (the most recent ones)")


class CirclesSpec(_Strict):
    """Circles around the document, as `nerftune paths` makes them (lengths relative to the cameras' distance)."""

    radii: list[float] = Field([0.2, 0.4], min_length=1)
    distances: list[float] = Field([1.0, 1.6], min_length=1)
    views: int = Field(9, ge=1)


class RenderSpec(_Strict):
    """Novel views rendered from trained trials: a paths file, or circles made from the sweep's data."""

    paths: str | None = Field(None, description="a file from `nerftune paths` (relative to this spec)")
    circles: CirclesSpec | None = None
    trials: Literal["each", "best"] = Field("best", description="every trial that completes, or the best K")
    best_k: int = Field(3, ge=1)
    video: bool = False
    crop: bool = Field(True, description="cut off what lies in front of the document, where the data has a crop")

    @model_validator(mode="after")
    def _one_source(self) -> "RenderSpec":
        if (self.paths is None) == (self.circles is None):
            raise ValueError("give either `paths` (a file from `nerftune paths`) or `circles`")
        return self


class TrackingSpec(_Strict):
    """MLflow: a local SQLite store under the storage folder unless `uri` names a tracking server."""

    enabled: bool = True
    uri: str | None = None
    experiment: str | None = Field(None, description="MLflow experiment; default: the sweep's name")
    checkpoints: Literal["none", "last", "best"] = "best"
    images: Literal["milestones", "end", "none"] = "milestones"
    preview_images: int = Field(3, ge=0, description="test views rendered next to their ground truth")


DEFAULT_TRIALS = 10


class SweepSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    data: list[DataSpec] = Field(min_length=1, description="one dataset, or a list: a study over several scenes")
    metric: MetricSpec = MetricSpec()
    profile: Literal["tiny", "small", "default"] = "default"
    fast_path: bool | Literal["auto"] = Field(
        "auto",
        description="compiled hash grid and TF32: auto = on CUDA for methods with nerfstudio's "
        "hash grid; true = there on the CPU too; false = never",
    )
    space: dict[str, Dimension]
    search: SearchSpec = SearchSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    replicates: str | None = Field(
        None,
        description="a listed dimension (e.g. seed): each configuration runs once "
        "per value, and is searched and scheduled on the mean over them",
    )
    stratify: list[str] = Field(
        default_factory=list,
        description="listed dimensions whose values the scheduler "
        "never compares: each value (e.g. frame count) keeps its best configurations",
    )
    num_samples: int | None = Field(
        None, ge=1, description="configurations to run (each once per replicate); a grid runs each combination once"
    )
    max_concurrent_trials: int = Field(0, ge=0, description="0 = as many as the resources allow")
    max_failures: int = Field(1, ge=0, description="retries of a failing trial from its last checkpoint")
    resources: ResourcesSpec = ResourcesSpec()
    eval: EvalSpec = EvalSpec()
    checkpoints: CheckpointSpec = CheckpointSpec()
    tracking: TrackingSpec = TrackingSpec()
    render: RenderSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _scenes_are_a_dimension(cls, raw: Any) -> Any:
        """Several datasets make the dimension `scene` (their names), a stratum: configurations are compared only
        on the same scene, and each scene keeps its own test set."""
        if not isinstance(raw, dict) or "data" not in raw:
            return raw
        entries = [{"path": e} if isinstance(e, str) else e for e in _as_list(raw["data"])]
        raw = {**raw, "data": entries}
        if len(entries) < 2 or not all(isinstance(e, dict) and isinstance(e.get("path"), str) for e in entries):
            return raw  # one scene, or a malformed entry that the schema reports
        names = [_scene_name(e) for e in entries]
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice:
            raise FieldProblem("data", f"two datasets are both named {twice!r}", "give each a `name:`")
        space = raw.get("space")
        if isinstance(space, dict):
            if SCENE in space:
                raise FieldProblem(f"space.{SCENE}", "the scenes come from `data`", f"remove `{SCENE}` from space")
            raw["space"] = {**space, SCENE: {"values": names}}
        stratify = _as_list(raw.get("stratify", []))
        if SCENE not in stratify and raw.get("replicates") != SCENE:
            raw["stratify"] = [*stratify, SCENE]
        return raw

    @field_validator("metric", mode="before")
    @classmethod
    def _metric_shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("stratify", mode="before")
    @classmethod
    def _stratify_shorthand(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("space", mode="before")
    @classmethod
    def _space_shorthand(cls, value: Any) -> Any:
        """A scalar is a fixed value; missing standard dimensions get their defaults."""
        if not isinstance(value, dict):
            return value
        space = {k: v for k, v in DEFAULT_DIMENSIONS.items()} | dict(value)
        return {k: _dimension_shorthand(v) for k, v in space.items()}

    @model_validator(mode="after")
    def _space_is_sound(self) -> "SweepSpec":
        for name in REQUIRED_DIMENSIONS:
            if name not in self.space:
                raise FieldProblem(f"space.{name}", f"`{name}` is required", "e.g. `steps: 1000`")
        for name, dim in self.space.items():
            if not (
                name in DEFAULT_DIMENSIONS or name in REQUIRED_DIMENSIONS or name in STUDY_DIMENSIONS or "." in name
            ):
                raise FieldProblem(
                    f"space.{name}",
                    "unknown dimension",
                    "use frames, seed, method, steps, poses, masks, mask_error or a dotted nerfstudio config path like "
                    "pipeline.model.hidden_dim",
                )
            check_standard_dimension(name, dim)
        self._check_replicates_and_strata()
        if self.search.algorithm == "grid":
            ranged = [name for name, dim in self.space.items() if dim.values is None]
            if ranged:
                raise FieldProblem(f"space.{ranged[0]}", "a grid search needs `values`", "list the values to try")
        return self._grace_period_within_steps()

    def _check_replicates_and_strata(self) -> None:
        searched = self.searched
        if self.replicates is not None:
            dim = self.space.get(self.replicates)
            if dim is None or self.replicates not in searched:
                raise FieldProblem(
                    "replicates",
                    f"{self.replicates!r} is not a searched dimension",
                    f"list its values under space, e.g. `{self.replicates}: {{values: [0, 1, 2]}}`",
                )
            if dim.values is None:
                raise FieldProblem("replicates", "replicates need listed values", "e.g. `seed: {values: [0, 1, 2]}`")
        for name in self.stratify:
            dim = searched.get(name)
            if dim is None:
                raise FieldProblem("stratify", f"{name!r} is not a searched dimension", "stratify by one that varies")
            if name == self.replicates:
                raise FieldProblem("stratify", f"{name!r} is the replicate dimension", "stratify by another one")
            if dim.values is None:
                raise FieldProblem(
                    "stratify",
                    f"{name!r} is a continuous distribution: strata need listed values",
                    f"give `{name}` as `values: [...]`",
                )

    def _grace_period_within_steps(self) -> "SweepSpec":
        """ASHA needs grace_period <= the longest trial: a default shrinks to fit, a stated one must fit."""
        if self.scheduler.type != "asha" or self.scheduler.grace_period <= self.max_steps:
            return self
        if "grace_period" in self.scheduler.model_fields_set:
            raise FieldProblem(
                "scheduler.grace_period",
                f"{self.scheduler.grace_period} is more than the longest trial ({self.max_steps} steps)",
                "lower it, or use `scheduler: {type: none}`",
            )
        # a copy: the default SchedulerSpec instance is shared by every spec that leaves `scheduler` out
        object.__setattr__(self, "scheduler", self.scheduler.model_copy(update={"grace_period": self.max_steps}))
        return self

    @property
    def grid_size(self) -> int:
        return math.prod(len(dim.choices) or 1 for dim in self.space.values())

    @property
    def replicate_values(self) -> list[Any]:
        """The values every configuration runs with (common random numbers); `[None]` without replicates."""
        return self.space[self.replicates].choices if self.replicates else [None]

    @property
    def configuration_space(self) -> dict[str, Dimension]:
        """What the searcher chooses: the searched dimensions but the replicate one."""
        return {k: d for k, d in self.searched.items() if k != self.replicates}

    @property
    def configuration_count(self) -> int:
        """Configurations to run; never more than the distinct ones of an all-discrete space (runs are seeded, so
        a repeated configuration would repeat its result)."""
        space = self.configuration_space
        distinct = math.prod(len(dim.choices) for dim in space.values())
        wanted = self.num_samples or (distinct if self.search.algorithm == "grid" else DEFAULT_TRIALS)
        if all(dim.values is not None for dim in space.values()):
            return min(wanted, distinct)
        return wanted

    @property
    def trial_count(self) -> int:
        return self.configuration_count * len(self.replicate_values)

    @property
    def max_steps(self) -> int:
        dim = self.space["steps"]
        return int(max(dim.choices) if dim.values is not None else dim.max)

    @property
    def searched(self) -> dict[str, Dimension]:
        """The dimensions that vary (more than one value, or a distribution)."""
        return {k: d for k, d in self.space.items() if d.values is None or len(d.values) > 1}

    @property
    def fixed(self) -> dict[str, Any]:
        return {k: d.values[0] for k, d in self.space.items() if d.values is not None and len(d.values) == 1}


def _dimension_shorthand(value: Any) -> Any:
    """`12` and `{value: [64, 32]}` are fixed values, `[6, 12]` is a list of values; a mapping is a `Dimension`."""
    if isinstance(value, dict):
        return {"values": [value["value"]]} if set(value) == {"value"} else value
    return {"values": value if isinstance(value, list) else [value]}


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _scene_name(entry: dict[str, Any]) -> str:
    """A dataset's name in a study: its `name`, else its folder's (or the synthetic scene's) name."""
    path = str(entry["path"])
    return entry.get("name") or (
        path.removeprefix(SYNTHETIC_PREFIX) if path.startswith(SYNTHETIC_PREFIX) else Path(path).name
    )


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a spec file; raises `InputError` with the file, the field and the problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise InputError(path, "", f"cannot read the spec: {error.strerror}", "check the path") from None
    return parse_spec(text, path)


def parse_spec(text: str, source: str | Path = "<spec>") -> SweepSpec:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(source, where, f"invalid YAML: {problem}", "fix the syntax") from None
    if not isinstance(raw, dict):
        raise InputError(source, "", "a spec is a YAML mapping", "start from search_spaces/demo.yaml")
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as error:
        raise _to_input_error(error, source, raw) from None


def _to_input_error(error: ValidationError, source: str | Path, raw: dict) -> InputError:
    first = error.errors()[0]
    if first["loc"][:2] == ("data", 0) and not isinstance(raw.get("data"), list):
        first["loc"] = ("data", *first["loc"][2:])  # one dataset, written without a list: no index to show
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, FieldProblem):
        return InputError(source, cause.field, cause.problem, cause.hint)
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    field = field or "(top level)"
    if first["type"] == "extra_forbidden":
        hint = f"valid keys here: {_valid_keys(first['loc'])}"
        if str(first["loc"][0]) == "space":
            hint += "; a fixed mapping is written {value: {...}}"
        return InputError(source, field, "unknown key", hint)
    if first["type"] == "missing":
        return InputError(source, field, "required field is missing", "add it (see search_spaces/demo.yaml)")
    message = first["msg"].removeprefix("Value error, ")
    return InputError(source, field, f"{message} (got {first.get('input')!r})", "")


def _valid_keys(loc: tuple) -> str:
    model: type[BaseModel] = SweepSpec
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # an item of a list: its model is the list's
        annotation = model.model_fields.get(str(part))
        target = getattr(annotation, "annotation", None)
        if get_origin(target) is list:
            target = get_args(target)[0]
        if isinstance(target, type) and issubclass(target, BaseModel):
            model = target
        elif str(loc[0]) == "space":
            model = Dimension
    return ", ".join(model.model_fields)


def spec_hash(path: str | Path) -> str:
    """A fingerprint of the spec file's bytes (recorded with the sweep so that edits are noticed)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
