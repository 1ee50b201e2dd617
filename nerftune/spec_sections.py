"""The sections of a sweep spec, each a typed schema: the dimensions of its space, its data, metric, search,
scheduler, resources, evaluation, checkpoints, rendering, tracking and fine-tuning. `spec.py` puts them together."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nerftune.dimensions import FieldProblem
from nerftune.outcomes import METRIC_MODES, METRIC_TOLERANCES

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
    downscale: int = Field(
        1, ge=1, description="train and score on the images at 1/N of their size, as nerfstudio's downscale_factor"
    )

    @property
    def synthetic_scene(self) -> str | None:
        return self.path[len(SYNTHETIC_PREFIX) :] if self.path.startswith(SYNTHETIC_PREFIX) else None

    @property
    def scene_name(self) -> str:
        return scene_name({"path": self.path, "name": self.name})

    @field_validator("path")
    @classmethod
    def _known_scene(cls, path: str) -> str:
        if path.startswith(SYNTHETIC_PREFIX) and path[len(SYNTHETIC_PREFIX) :] not in SYNTHETIC_SCENES:
            raise ValueError(f"unknown synthetic scene {path!r}; available: {', '.join(SYNTHETIC_SCENES)}")
        return path


class MetricSpec(_Strict):
    name: Literal[tuple(METRIC_MODES)] = "psnr"  # type: ignore[valid-type]
    mode: Literal["max", "min"] | None = None
    tolerance: float | None = Field(
        None,
        gt=0,
        description="the smallest difference that matters: how much worse than the most frames (steps) is still "
        "enough, in the metric's units (default: 0.5 for PSNR in dB, 0.01 for the others)",
    )

    def smallest_difference(self) -> float:
        """The tolerance the spec gives, or the metric's default."""
        return self.tolerance if self.tolerance is not None else METRIC_TOLERANCES[self.name]

    @model_validator(mode="after")
    def _natural_mode(self) -> "MetricSpec":
        natural = METRIC_MODES[self.name]
        if self.mode is None:
            object.__setattr__(self, "mode", natural)
        elif self.mode != natural:
            better = "higher" if natural == "max" else "lower"
            raise ValueError(
                f"{better} {self.name} is better, so its mode is {natural!r}, not {self.mode!r}: leave it out"
            )
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
    custom: dict[str, float] = Field(
        default_factory=dict,
        description="Ray custom resources each trial asks for, e.g. {a100: 1}: trials run only on nodes started "
        "with them (`ray start --resources`)",
    )

    @field_validator("custom")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if amount <= 0 or name.upper() in ("CPU", "GPU"):
                raise ValueError(f"{name}: {amount} is not a custom resource amount > 0 (cpu and gpu have their own)")
        return value

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
    per: list[str] = Field(
        default_factory=list,
        description="with `best`: the best K of each value of these listed dimensions (e.g. frames), whose novel "
        "views the report then shows side by side",
    )
    video: bool = False
    crop: bool = Field(True, description="cut off what lies in front of the document, where the data has a crop")
    legibility: bool = Field(
        True,
        description="score each view by how legible the document's text stays (OCR, about 0.5 s a view; where the "
        "data records the document's corners and Tesseract is installed)",
    )

    @property
    def name(self) -> str:
        """The renders' folder in each trial's (`renders/<name>/`): the paths file's name, or `circles`."""
        return Path(self.paths).stem if self.paths else "circles"

    @field_validator("per", mode="before")
    @classmethod
    def _per_shorthand(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> "RenderSpec":
        if (self.paths is None) == (self.circles is None):
            raise ValueError("give either `paths` (a file from `nerftune paths`) or `circles`")
        if self.per and self.trials != "best":
            raise FieldProblem("render.per", "applies to `trials: best`", "drop `per`, or render `trials: best`")
        return self


class TrackingSpec(_Strict):
    """MLflow: a local SQLite store under the storage folder unless `uri` names a tracking server."""

    enabled: bool = True
    uri: str | None = None
    experiment: str | None = Field(None, description="MLflow experiment; default: the sweep's name")
    checkpoints: Literal["none", "last", "best"] = "best"
    images: Literal["milestones", "end", "none"] = "milestones"
    preview_images: int = Field(3, ge=0, description="test views rendered next to their ground truth")

    @field_validator("uri")
    @classmethod
    def _no_password(cls, uri: str | None) -> str | None:
        """A spec is shared and logged: a password in it would travel with it."""
        if uri and re.search(r"://[^:/@]+:[^@/]*@", uri):
            raise FieldProblem(  # not echoed back: the line shows no value
                "tracking.uri",
                "holds a password: leave it out of the spec",
                "PostgreSQL's comes from PGPASSWORD, an MLflow server's from MLFLOW_TRACKING_PASSWORD",
            )
        return uri


def scene_name(entry: dict[str, Any]) -> str:
    """A dataset's name in a study: its `name`, else its folder's (or the synthetic scene's) name."""
    path = str(entry["path"])
    return entry.get("name") or (
        path.removeprefix(SYNTHETIC_PREFIX) if path.startswith(SYNTHETIC_PREFIX) else Path(path).name
    )


class FinetuneSpec(_Strict):
    """A stage after the RGB steps: the trial's own model trained on segmentation images (the document cut out)
    with its geometry frozen. `steps` may be a list: a searched dimension `finetune_steps`."""

    target: Literal["segmentation"] = Field(
        "segmentation",
        description="each frame's `segmentation_path` image where the data names one, else its image with its mask "
        "applied (document kept, the rest black)",
    )
    train: Literal["color"] = Field("color", description="what learns: colour only; density and poses stay frozen")
    steps: int | list[int] | None = Field(None, description="fine-tuning steps, or a list of them to compare")
