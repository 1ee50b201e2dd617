"""The sweep spec: a YAML file validated by a typed schema. Nothing else in nerftune parses YAML.

    name: demo
    data: synthetic:id-card            # or a nerfstudio dataset folder (relative to this file)
    metric: psnr                       # or {name: psnr, tolerance: 0.5}: how much worse is still enough
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
    resources: {cpu: 1, gpu: 1}        # gpu: 0.25 = 4 trials per GPU, auto = measured; custom: {a100: 1}: Ray's own
    fast_path: auto                    # compiled hash grid: CUDA; CPU where it pays; true: all; false: never; or a kind
    tracking: {checkpoints: best}      # MLflow; {uri: http://host:5000} for a server, {enabled: false} for none
    render: {circles: {radii: [0.2, 0.4], distances: [1.0, 1.6], views: 9}, trials: best, best_k: 3}
    finetune: {target: segmentation, train: color, steps: [150, 450]}   # then colour only, on segmentation images
    warm_start: {frames: 1.0, steps: 3000}   # first train this source model once; every trial starts from it

Study dimensions (`dimensions.py`): scene (several `data`), poses, masks, mask_error, finetune_steps, init_from.

Every error is an `InputError` naming the file, the field and what to do.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from nerftune.dimensions import (  # noqa: F401 (the dimension names are the spec's, re-exported)
    CONFIGURATION,
    DEFAULT_DIMENSIONS,
    FRAME_SUBSET,
    MASK_ERROR,
    MASKS,
    POSES,
    REQUIRED_DIMENSIONS,
    SCENE,
    STUDY_DIMENSIONS,
    TRAINER_SETTINGS,
    FINETUNE_STEPS,
    INIT_FROM,
    SOURCE,
    FieldProblem,
    check_frame_subsets,
    check_grouping,
    check_replicates_and_strata,
    check_source_values,
    check_standard_dimension,
    is_dimension,
    is_int,
    is_nerfstudio_setting,
    unknown_dimension_hint,
)
from nerftune.errors import InputError
from nerftune.fast_path_setting import KindName, known_setting
from nerftune.spec_errors import to_input_error, yaml_mapping
from nerftune.spec_shorthand import (
    dimension_shorthand,
    finetune_steps_as_dimension,
    scenes_as_dimension,
    warm_start_as_init_from,
)
from nerftune.spec_sections import (  # noqa: F401 (the sections are the spec's, re-exported)
    NAME_PATTERN,
    SYNTHETIC_PREFIX,
    SYNTHETIC_SCENES,
    CheckpointSpec,
    DataSpec,
    Dimension,
    EvalSpec,
    FinetuneSpec,
    MetricSpec,
    RenderSpec,
    ResourcesSpec,
    SchedulerSpec,
    SearchSpec,
    TrackingSpec,
    _Strict,
    scene_name,
    value_text,
)

DEFAULT_TRIALS = 10


class SweepSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    data: list[DataSpec] = Field(min_length=1, description="one dataset, or a list: a study over several scenes")
    metric: MetricSpec = MetricSpec()
    profile: Literal["tiny", "small", "default"] = "default"
    fast_path: bool | Literal["auto"] | KindName = Field(
        "auto",
        description="compiled hash grid and TF32: auto = on CUDA for methods with nerfstudio's hash grid, and on "
        "the CPU for trials of 1000 steps or more and for scoring a large test set; true = everywhere; false = never; "
        "or, everywhere, a faster kind not yet measured on a GPU: compiled-step (the nerfacto family's training step "
        "compiled whole), cuda-graphs (that, replayed as CUDA graphs), triton (fused Triton hash grids; CUDA)",
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
    finetune: FinetuneSpec | None = None
    warm_start: dict[str, Any] | None = Field(
        None,
        description="a source model (its own values of the space's dimensions) that the sweep trains first, once, as "
        "the sweep NAME-source; every trial then starts from its weights (`init_from: source`)",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, raw: Any) -> Any:
        return warm_start_as_init_from(finetune_steps_as_dimension(scenes_as_dimension(raw)))

    @field_validator("fast_path", mode="before")
    @classmethod
    def _known_fast_path(cls, value: Any) -> Any:
        return known_setting(value)

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
        return {k: dimension_shorthand(v) for k, v in space.items()}

    @model_validator(mode="after")
    def _space_is_sound(self) -> "SweepSpec":
        for name in self.space:  # first: a misspelt `steps` is a misspelling before it is a missing `steps`
            if not is_dimension(name):
                raise FieldProblem(f"space.{name}", "unknown dimension", unknown_dimension_hint(name))
        for name in REQUIRED_DIMENSIONS:
            if name not in self.space:
                raise FieldProblem(f"space.{name}", f"`{name}` is required", "e.g. `steps: 1000`")
        for name, dim in self.space.items():
            check_standard_dimension(name, dim)
        check_replicates_and_strata(self.replicates, self.stratify, self.searched)
        check_frame_subsets(self.searched, self.replicates, self.stratify, self.scheduler.type, self.search.algorithm)
        if self.render is not None:
            check_grouping("render.per", self.render.per, self.replicates, self.searched)
        if self.warm_start is not None:
            check_source_values(self.warm_start, self.space)
        if self.search.algorithm == "grid":
            ranged = [name for name, dim in self.space.items() if dim.values is None]
            if ranged:
                raise FieldProblem(f"space.{ranged[0]}", "a grid search needs `values`", "list the values to try")
        return self._grace_period_within_steps()

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

    def source_spec(self) -> "SweepSpec":
        """The `warm_start` source as a sweep of one trial: its own values, else the space's (first) ones; no
        scheduler, renders, fine-tuning stage or warm start of its own."""
        space = {
            name: Dimension(values=[self.warm_start[name] if name in self.warm_start else dim.values[0]])
            for name, dim in self.space.items()
            if name not in (INIT_FROM, FINETUNE_STEPS)
        }
        return self.model_copy(
            update=dict(
                space=space,
                warm_start=None,
                finetune=None,
                render=None,
                replicates=None,
                stratify=[],
                num_samples=1,
                search=SearchSpec(algorithm="grid"),
                scheduler=SchedulerSpec(type="none"),
            )
        )

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
    def max_downscale(self) -> int:
        """The largest `data.downscale`: what a suggested downscale starts from."""
        return max(entry.downscale for entry in self.data)

    @property
    def trial_count(self) -> int:
        return self.configuration_count * len(self.replicate_values)

    @property
    def max_steps(self) -> int:
        """The longest trial's steps in all (fine-tuning included)."""
        return self._largest("steps") + (self._largest(FINETUNE_STEPS) if FINETUNE_STEPS in self.space else 0)

    def _largest(self, name: str) -> int:
        dim = self.space[name]
        return int(max(dim.choices) if dim.values is not None else dim.max)

    @property
    def searched(self) -> dict[str, Dimension]:
        """The dimensions that vary (more than one value, or a distribution)."""
        return {k: d for k, d in self.space.items() if d.values is None or len(d.values) > 1}

    @property
    def fixed(self) -> dict[str, Any]:
        return {k: d.values[0] for k, d in self.space.items() if d.values is not None and len(d.values) == 1}


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a spec file; raises `InputError` with the file, the field and the problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise InputError(path, "", f"cannot read the spec: {error.strerror}", "check the path") from None
    return parse_spec(text, path)


def parse_spec(text: str, source: str | Path = "<spec>") -> SweepSpec:
    raw = yaml_mapping(text, source)
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as error:
        raise to_input_error(error, source, raw, SweepSpec) from None


def spec_hash(path: str | Path) -> str:
    """A fingerprint of the spec file's bytes (recorded with the sweep so that edits are noticed)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
