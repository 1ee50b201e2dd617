"""The study dimensions checked against the data and methods before a sweep starts: masks, the mask-error study,
document metrics, per-subset poses and the fine-tuning stage. Each problem is one `InputError` line."""

from __future__ import annotations

from pathlib import Path

from nerftune.data.dataset import Dataset, mask_of
from nerftune.data.frames import resolve_frame_count
from nerftune import warm_start
from nerftune.dimensions import INIT_FROM, MASK_ERROR, MASKS, POSES, SOURCE
from nerftune.errors import InputError
from nerftune.nerf.methods import available_methods, colour_only
from nerftune.spec import SweepSpec


def check_study_data(spec: SweepSpec, spec_path: Path, dataset: Dataset) -> None:
    corrupted = [v for v in spec.space[MASK_ERROR].choices if isinstance(v, dict)] if MASK_ERROR in spec.space else []
    if corrupted:
        _check_masks(spec_path, dataset, f"space.{MASK_ERROR}", "corrupting masks", "or drop mask_error")
        _check_mask_error_frames(spec, spec_path, dataset, max(v["frames"] for v in corrupted))
    elif MASKS in spec.space and True in spec.space[MASKS].choices:
        _check_masks(spec_path, dataset, f"space.{MASKS}", "true", "or use masks: false")
    if spec.finetune:
        _check_segmentation(spec_path, dataset)
    if spec.metric.name.startswith("doc_"):
        _check_document_region(spec, spec_path, dataset)
    if POSES in spec.space and "per_subset" in spec.space[POSES].choices:
        from nerftune.data.subset_poses import check_original_frames

        check_original_frames(dataset, spec_path)


def warm_start_sources(spec: SweepSpec, spec_path: Path, storage: Path, scenes: dict) -> dict[str, str]:
    """Each `init_from` value's checkpoint file, checked: it exists, and trained this sweep's method on its data."""
    if INIT_FROM not in spec.space:
        return {}
    if len(scenes) > 1:
        raise InputError(spec_path, f"space.{INIT_FROM}", "a study over several scenes cannot warm-start", "use one")
    (scene,) = scenes.values()
    sources = {}
    for value in spec.space[INIT_FROM].choices:
        if value == SOURCE:  # trained by the sweep first (`warm_start`): known once it has been
            _check_source_method(spec, spec_path)
            continue
        source = warm_start.resolve(value, spec_path, storage)
        warm_start.check_compatible(source, spec_path, scene.dataset, spec.space["method"].choices)
        sources[value] = str(source.checkpoint.resolve())
    return sources


def _check_source_method(spec: SweepSpec, spec_path: Path) -> None:
    (method,) = spec.source_spec().space["method"].values
    if any(m != method for m in spec.space["method"].choices):
        raise InputError(
            spec_path,
            "warm_start.method",
            f"the source is a {method} model; this sweep trains {', '.join(spec.space['method'].choices)}",
            "warm-start trials of the source's method only",
        )


def check_finetune_methods(spec: SweepSpec, spec_path: Path, method: str) -> None:
    """Fine-tuning freezes geometry, which nerftune knows how to do for the nerfacto family only."""
    if spec.finetune and not colour_only(method):
        supported = [m for m in available_methods() if colour_only(m)]
        raise InputError(
            spec_path,
            "finetune",
            f"nerftune cannot freeze the geometry of {method}",
            f"fine-tune one of {', '.join(supported)}",
        )


def _check_masks(spec_path: Path, dataset: Dataset, field: str, what: str, otherwise: str) -> None:
    unmasked = [frame["file_path"] for frame in dataset.frames if not mask_of(frame)]
    if unmasked:
        raise InputError(
            spec_path,
            field,
            f"{what} needs a mask for every frame, and {len(unmasked)} of {len(dataset.frames)} frames of "
            f"{dataset.root} have none (the first: {unmasked[0]})",
            f"prepare the capture with `nerftune prepare --masks`, {otherwise}",
        )


def _check_segmentation(spec_path: Path, dataset: Dataset) -> None:
    missing = [
        frame["file_path"] for frame in dataset.frames if not frame.get("segmentation_path") and not mask_of(frame)
    ]
    if missing:
        raise InputError(
            spec_path,
            "finetune.target",
            f"segmentation needs a segmentation image or a mask for every frame, and {len(missing)} frames of "
            f"{dataset.root} have neither (the first: {missing[0]})",
            "prepare the capture with `nerftune prepare --masks`, or name each frame's `segmentation_path`",
        )


def _check_mask_error_frames(spec: SweepSpec, spec_path: Path, dataset: Dataset, corrupted: int) -> None:
    dim = spec.space["frames"]
    fewest = min(resolve_frame_count(v, len(dataset.pool)) for v in dim.choices or [_lowest(dim)])
    if corrupted > fewest:
        raise InputError(
            spec_path,
            f"space.{MASK_ERROR}",
            f"corrupts the masks of {corrupted} frames, and a trial with frames={fewest} trains on only {fewest}",
            f"corrupt at most {fewest} frames, or train on more",
        )


def _lowest(dim) -> int | float:
    return int(dim.min) if dim.type == "int" else dim.min


def has_document_text(dataset: Dataset) -> bool:
    """Whether doc_cer can be measured on this data (its document's corners are recorded), given Tesseract."""
    return len(dataset.transforms.get("nerftune", {}).get("document_corners", [])) == 4


def _check_document_region(spec: SweepSpec, spec_path: Path, dataset: Dataset) -> None:
    from nerftune.data.document_region import region_source
    from nerftune.legibility import OCR_MISSING, ocr_available

    if spec.metric.name == "doc_cer" and not has_document_text(dataset):
        raise InputError(
            spec_path,
            "metric",
            f"doc_cer reads the document rectified by its corners, and {dataset.root} records none",
            "prepare the capture with `nerftune prepare --masks` (it records them), or use doc_psnr",
        )
    if spec.metric.name == "doc_cer" and not ocr_available():
        raise InputError(spec_path, "metric", OCR_MISSING.replace("doc_cer is empty: it", "doc_cer"), "or use doc_psnr")
    if region_source(dataset) is None:
        raise InputError(
            spec_path,
            "metric",
            f"{spec.metric.name} is computed inside the document, and {dataset.root} marks it neither with masks "
            "nor with document corners",
            "prepare the capture with `nerftune prepare --masks`, or use psnr",
        )
