"""What `nerftune prepare` says when it is done: what SfM registered, which camera model and mapper it kept and
against what, whether it found the document, and how to use the folder (the whole record is prepare_report.json)."""

from __future__ import annotations

from pathlib import Path

from nerftune.data.dataset import PREPARE_REPORT
from nerftune.data.lenses import lenses_found


def summary_lines(out: Path, report: dict) -> list[str]:
    lines = [
        f"{out}: {report['frames_registered']}/{report['frames_in']} frames registered, {report['points']} points, "
        f"reprojection error {report['mean_reprojection_error_px']:.2f} px",
        f"camera: {report['camera_model']}{_against(report['camera_model_attempts'], 'camera_model')}; "
        f"{report['mapper']} mapping{_against(report['mapper_attempts'], 'mapper')}",
    ]
    if len(report["lenses"]) > 1:
        lines.append(lenses_found(report["lenses"]))
    document = report["document"]
    lines.append(
        f"point of interest: the document's centre, on a plane of {document['plane_points']} points, with a crop "
        "in front of it"
        if document
        else "point of interest: no document plane found; camera paths aim where the cameras look (or `nerftune "
        "paths --poi x,y,z`), with no crop"
    )
    lines.append(f"use it: `data: {out}` in a sweep spec; everything prepare did: {out / PREPARE_REPORT}")
    return lines


def _against(attempts: list[dict], key: str) -> str:
    """Each attempt's frames and error, where more than one was made (nothing otherwise)."""
    if len(attempts) < 2:
        return ""
    return " (tried: " + ", ".join(
        f"{attempt[key]} {attempt['frames_registered']} frames at {attempt['mean_reprojection_error_px']:.3f} px"
        for attempt in attempts
    ) + ")"
