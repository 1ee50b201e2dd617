"""A sweep's own state file, `nerftune-sweep.json`: what it was started from, and whether a rerun may resume it.

It records the spec (hash and text), the data folder, the fixed test set (names and hash), each frame's content
digest and the sweep's MLflow run id. A rerun of the same command resumes; a changed spec, or data whose frames
changed under the sweep (another `nerftune prepare` into its folder, say), is refused with what changed, unless
--force, but for values added to one dimension of a finished study, which grow it (`growth.py`); --restart moves
the old folder aside. Reading it needs no Ray.
"""

from __future__ import annotations

import difflib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from nerftune.data.fingerprint import changes
from nerftune.errors import InputError, some_of
from nerftune.growth import planned_growth, record_round
from nerftune.preflight import Prepared, Scene
from nerftune.spec import spec_hash

STATE_FILE = "nerftune-sweep.json"
FORCED_TAG = "nerftune.forced_resumes"


def resume_decision(prepared: Prepared, restart: bool, force: bool, dry_run: bool) -> bool:
    """Whether an earlier run of this sweep exists to resume; refuses when the spec changed (unless `force`), but
    for values added to one dimension of a finished study, which grow it (`prepared.growth`)."""
    folder = prepared.experiment_dir
    if restart and folder.exists() and not dry_run:
        aside = folder.with_name(f"{folder.name}.before-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(folder, aside)
        print(f"--restart: moved the previous sweep to {aside}")
        return False
    state = read_state(folder)
    if state is None:
        return False
    if state.get("spec_hash") != spec_hash(prepared.spec_path):
        prepared.growth = planned_growth(prepared.spec_path, prepared.spec, prepared.name, folder, state)
        if prepared.growth is None:
            first = _first_change(state.get("spec_text", ""), prepared.spec_path)
            if not force:
                raise InputError(
                    prepared.spec_path,
                    "",
                    f"changed since sweep {prepared.name} started ({first})",
                    "rerun with --force to resume anyway, or --restart to start over; a finished study grows "
                    "by values added to one dimension alone",
                )
            _forced(prepared, f"its spec {prepared.spec_path.name} changed ({first})")
    for name, scene in prepared.scenes.items():
        changed = _data_changes(state.get("scenes", {}).get(name, {}), scene)
        if changed and not force:
            raise InputError(
                scene.data_dir / "transforms.json",
                "",
                f"changed since sweep {prepared.name} started: {changed}",
                "restore the data, rerun with --force to resume on it anyway, or --restart to start over",
            )
        if changed:
            _forced(prepared, f"the data of {scene.data_dir} changed: {changed}")
    return True


def _forced(prepared: Prepared, what: str) -> None:
    """A resume over a change, with --force: said now, and recorded in the state file (`record_forced`)."""
    prepared.warnings.append(f"--force: resuming sweep {prepared.name} although {what}")
    prepared.forced.append(what)


def record_forced(state: dict[str, Any], prepared: Prepared) -> None:
    """Keep what a forced resume went over in the state file, for the report (its trials may mix two setups), and
    take the spec and data it resumed on as the sweep's own: later resumes compare with those."""
    if prepared.forced:
        at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        state.setdefault("forced_resumes", []).extend({"at": at, "over": what} for what in prepared.forced)
        adopt_spec(state, prepared)


def record_growth(state: dict[str, Any], prepared: Prepared) -> None:
    """A growth's round, in the state file (a rerun resumes it, the report says it), with the grown spec as the
    sweep's own."""
    if prepared.growth is not None:
        record_round(state, prepared.growth)
        adopt_spec(state, prepared)


def adopt_spec(state: dict[str, Any], prepared: Prepared) -> None:
    """Take the spec and data that a rerun went on with as the sweep's own: later reruns compare with those."""
    now = new_state(prepared)
    state.update({key: now[key] for key in ("spec_path", "spec_hash", "spec_text", "scenes")})


def forced_tags(state: dict[str, Any]) -> dict[str, str]:
    """The MLflow tag of the sweep's run that says its resumes forced over changes, where any did."""
    forced = state.get("forced_resumes", [])
    return {FORCED_TAG: "; ".join(f"{entry['at']}: {entry['over']}" for entry in forced)} if forced else {}


def read_state(folder: Path) -> dict[str, Any] | None:
    path = folder / STATE_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as error:
        raise InputError(path, "", f"unreadable ({error})", "move the sweep folder aside with --restart") from None


def new_state(prepared: Prepared) -> dict[str, Any]:
    return {
        "spec_path": str(prepared.spec_path.resolve()),
        "spec_hash": spec_hash(prepared.spec_path),
        "spec_text": prepared.spec_path.read_text(),
        "scenes": {
            name: {
                "data_dir": str(scene.data_dir),
                "test_hash": scene.dataset.test_hash,
                "test_files": scene.dataset.test_names,
                "data_hash": scene.dataset.data_hash,
                "frames": scene.dataset.frame_digests,
            }
            for name, scene in prepared.scenes.items()
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_state(folder: Path, state: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_FILE).write_text(json.dumps(state, indent=2))


def _data_changes(recorded: dict[str, Any], scene: Scene) -> str:
    """What changed in a scene's frames since the sweep recorded them, in words; empty if nothing did."""
    if "frames" not in recorded:
        return ""  # a sweep started before nerftune recorded frame digests
    found = changes(recorded["frames"], scene.dataset.frame_digests)
    words = {"changed": "with another image or camera", "added": "added", "removed": "removed"}
    parts = [f"{len(names)} frame(s) {words[kind]} ({some_of(names)})" for kind, names in found.items() if names]
    if recorded.get("test_files") != scene.dataset.test_names:
        parts.append("the test set is other frames")
    elif found["changed"] and set(found["changed"]) & set(scene.dataset.test_names):
        parts.append("test frames among them")
    return "; ".join(parts)


def _first_change(old_text: str, spec_path: Path) -> str:
    diff = [
        line
        for line in difflib.unified_diff(old_text.splitlines(), spec_path.read_text().splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return "; ".join(diff[:4]) or "whitespace only"
