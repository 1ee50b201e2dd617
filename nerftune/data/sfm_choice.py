"""Which reconstruction to trust: the camera model, the mapper, and the fixes tried before giving up.

- Camera model (`auto`): mapping starts with SIMPLE_RADIAL (focal length, principal point, one radial term), which
  registers frames where OPENCV's eight parameters overfit a weak capture (3 against 20 of 40 frames on a real
  low-texture one). OPENCV is mapped too, on the same matches, and kept only where it registers every frame the
  simpler model did and lowers the reprojection error.
- Mapper (`auto`): global mapping runs only where every lens has a focal prior, as it places cameras reliably only
  then. It is kept where it registers more frames, at an acceptable reprojection error, *and* agrees with
  incremental mapping on the frames both registered: on a low-texture capture it can register every frame at a small
  reprojection error with cameras tens of per cent of the scene off, which the error alone does not show.
- Recovery: where too few frames register, the cheaper fixes are tried in this order, each keeping the ones before:
  a simpler camera model, exhaustive instead of sequential matching, relaxed initial-pair and triangulation
  thresholds. The whole of it has a time bound; every attempt is recorded.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nerftune.data.align import PoseError, pose_error
from nerftune.data.sfm import ONE_LENS, Lens, MapperSetting, Reconstruction, build_database, map_frames, match

AUTO_MODELS = ("SIMPLE_RADIAL", "OPENCV")  # the models `auto` maps, fewest parameters first
SIMPLER_MODEL = {
    "OPENCV": "SIMPLE_RADIAL",
    "RADIAL": "SIMPLE_RADIAL",
    "SIMPLE_RADIAL": "SIMPLE_PINHOLE",
    "PINHOLE": "SIMPLE_PINHOLE",
}
ACCEPTABLE_ERROR_PX = 2.0  # a mean reprojection error above this means a reconstruction that does not fit its matches
AGREEMENT = (0.05, 5.0)  # global vs incremental on shared frames: centres within 5 % of the scene size, 5 degrees


@dataclass(frozen=True)
class SfmOptions:
    matcher: str = "exhaustive"
    camera_model: str = "auto"
    mapper: str = "auto"  # "incremental", "global", or "auto": global too where every lens has a focal prior
    lenses: tuple[Lens, ...] = ONE_LENS
    min_registered: int = 2  # fewer registered frames start the recovery
    recovery_seconds: float = 300.0


@dataclass
class Outcome:
    """The kept reconstruction and every attempt that led to it, for `prepare_report.json`."""

    reconstruction: Reconstruction
    seconds: dict[str, float]
    camera_model_attempts: list[dict] = field(default_factory=list)
    mapper_attempts: list[dict] = field(default_factory=list)
    recovery: list[dict] = field(default_factory=list)

    def tried(self) -> str:
        """The recovery attempts in one phrase: "simpler camera model (SIMPLE_PINHOLE): 5, ..."."""
        parts = [f"{a['step']}: {a.get('frames_registered', a.get('skipped'))}" for a in self.recovery]
        return "; ".join(parts) or "nothing (no fix left to try)"


def reconstruct(
    image_dir: Path, image_names: list[str], work_dir: Path, options: SfmOptions, mask_dir: Path | None = None
) -> Outcome:
    """Features, matches and mappings into `work_dir`, following the rules in this module's docstring."""
    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "database.db"
    models = AUTO_MODELS if options.camera_model == "auto" else (options.camera_model,)
    seconds = build_database(image_dir, image_names, database, options.matcher, models[0], options.lenses, mask_dir)
    if options.mapper == "global":
        kept = map_frames(database, image_dir, work_dir / "global", image_names, models[0], MapperSetting("global"))
        outcome = Outcome(kept, seconds, [kept.summary()], [kept.summary(mapper="global", kept=True)])
    else:
        outcome = _incremental(database, image_dir, work_dir, image_names, models, seconds)
        if options.mapper == "auto" and all(lens.focal_prior_px for lens in options.lenses):
            _try_global(outcome, database, image_dir, work_dir, image_names)
    if len(outcome.reconstruction.registered) < options.min_registered:
        _recover(outcome, database, image_dir, work_dir, image_names, options)
    outcome.seconds["mapping"] = sum(
        a.get("seconds", 0.0) for a in outcome.camera_model_attempts + outcome.mapper_attempts[1:] + outcome.recovery
    )
    return outcome


def _incremental(database, image_dir, work_dir, image_names, models, seconds) -> Outcome:
    results = [map_frames(database, image_dir, work_dir / "sparse" / model, image_names, model) for model in models]
    attempts = [result.summary() for result in results]
    kept = results[choose_camera_model(attempts)]
    return Outcome(kept, seconds, attempts, [kept.summary(mapper="incremental", kept=True)])


def _try_global(outcome: Outcome, database, image_dir, work_dir, image_names) -> None:
    incremental = outcome.reconstruction
    model = incremental.camera_model
    result = map_frames(database, image_dir, work_dir / "global", image_names, model, MapperSetting("global"))
    shared = [name for name in result.registered if name in incremental.poses]
    agreement = (
        pose_error([result.poses[n] for n in shared], [incremental.poses[n] for n in shared])
        if len(shared) >= 3
        else None
    )
    use_global, reason = choose_mapper(outcome.mapper_attempts[0], result.summary(), agreement)
    outcome.mapper_attempts[0].update(kept=not use_global)
    outcome.mapper_attempts.append(
        result.summary(
            mapper="global",
            kept=use_global,
            reason=reason,
            agreement_with_incremental=agreement.to_json() if agreement else None,
        )
    )
    if use_global:
        outcome.reconstruction = result


def choose_camera_model(attempts: list[dict]) -> int:
    """Which attempt to keep (they come fewest parameters first): a richer model only where it registers every
    frame the kept one did, or more, and lowers the mean reprojection error."""
    kept = 0
    for index, attempt in enumerate(attempts[1:], 1):
        registers_as_many = attempt["frames_registered"] >= attempts[kept]["frames_registered"] > 0
        if registers_as_many and attempt["mean_reprojection_error_px"] < attempts[kept]["mean_reprojection_error_px"]:
            kept = index
    return kept


def choose_mapper(incremental: dict, global_: dict, agreement: PoseError | None) -> tuple[bool, str]:
    """Whether to keep the global reconstruction over the incremental one, and why (in words for the report)."""
    more = global_["frames_registered"] - incremental["frames_registered"]
    if more <= 0:
        return False, f"registers no more frames ({global_['frames_registered']})"
    if not global_["mean_reprojection_error_px"] <= ACCEPTABLE_ERROR_PX:
        return False, f"reprojection error {global_['mean_reprojection_error_px']:.2f} px > {ACCEPTABLE_ERROR_PX:g}"
    if agreement is None:
        return True, f"registers {more} more frames; too few shared frames to compare poses"
    position, rotation = AGREEMENT
    if not agreement.within(position, rotation):
        return False, (
            f"disagrees with incremental mapping on the frames both registered: cameras up to "
            f"{100 * agreement.max_position:.1f} % of the scene and {agreement.max_rotation_deg:.1f} degrees apart"
        )
    return True, f"registers {more} more frames and agrees with incremental mapping"


def _recover(outcome: Outcome, database, image_dir, work_dir, image_names, options: SfmOptions) -> None:
    kept = outcome.reconstruction
    model = kept.camera_model or AUTO_MODELS[0]
    state = {"model": model, "relaxed": False}
    steps = []
    if model in SIMPLER_MODEL:
        steps.append(
            (f"simpler camera model ({SIMPLER_MODEL[model]})", lambda: state.update(model=SIMPLER_MODEL[model]))
        )
    if options.matcher == "sequential":
        steps.append(("exhaustive matching", lambda: match(database, "exhaustive")))
    steps.append(("relaxed initialisation and triangulation", lambda: state.update(relaxed=True)))
    print(
        f"recovery: {len(kept.registered)} of {len(image_names)} frames registered, fewer than "
        f"{options.min_registered}; trying {len(steps)} fixes within {options.recovery_seconds:g} s",
        file=sys.stderr,
    )
    deadline = time.monotonic() + options.recovery_seconds
    for index, (step, apply) in enumerate(steps, 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            outcome.recovery.append({"step": step, "skipped": "time bound reached"})
            continue
        start = time.perf_counter()
        apply()
        result = map_frames(
            database,
            image_dir,
            work_dir / "recovery" / str(index),
            image_names,
            state["model"],
            MapperSetting(relaxed=state["relaxed"], max_seconds=deadline - time.monotonic()),
            label=f"recovery {index}/{len(steps)}: {step}",
        )
        result.seconds["mapping"] = time.perf_counter() - start  # the matching a step adds is part of its cost
        outcome.recovery.append(result.summary(step=step))
        if len(result.registered) > len(outcome.reconstruction.registered):
            outcome.reconstruction = result
        if len(outcome.reconstruction.registered) >= options.min_registered:
            return
