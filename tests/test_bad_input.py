"""Every kind of bad input, through the command line: one line naming file and field, exit status 2, nothing touched."""

import json
import shutil
from argparse import Namespace
from pathlib import Path

import pytest

from nerftune.preflight import prepare
from nerftune.sweep import _resume_decision

from conftest import run_cli


def good_spec(data: Path) -> str:
    return f"name: bad\ndata: {data}\nresources: {{gpu: 0}}\nspace:\n  frames: {{values: [2, 8]}}\n  steps: 50\n"


def edit_transforms(edit):
    def apply(data: Path) -> None:
        transforms = json.loads((data / "transforms.json").read_text())
        edit(data, transforms)
        (data / "transforms.json").write_text(json.dumps(transforms))

    return apply


CASES = {
    # case: (change to the spec text, change to the dataset copy, expected field, expected problem)
    "yaml syntax": (lambda t: t + "eval: {every: [1\n", None, "line 8", "invalid YAML"),  # the list never closes
    "unknown key": (lambda t: t + "sheduler: {type: none}\n", None, "sheduler", "unknown key"),
    "wrong type": (lambda t: t + "max_failures: often\n", None, "max_failures", "integer"),
    "empty range": (lambda t: t + "  seed: {type: int, min: 3, max: 1}\n", None, "space.seed", "empty range"),
    "unknown method": (lambda t: t + "  method: nerfacto2\n", None, "space.method", "valid: "),
    "cuda-only method": (lambda t: t + "  method: instant-ngp\n", None, "space.method", "needs a CUDA GPU"),
    "frames beyond the pool": (lambda t: t.replace("[2, 8]", "[2, 40]"), None, "space.frames", "40 frames asked"),
    "missing dataset": (lambda t: t.replace("data: ", "data: /nonexistent"), None, "data", "does not exist"),
    "no frames": (None, edit_transforms(lambda d, t: t.update(frames=[])), "frames", "no frames listed"),
    "no poses": (None, edit_transforms(lambda d, t: t["frames"][0].pop("transform_matrix")), "transform_matrix", "4x4"),
    "duplicate frames": (None, edit_transforms(lambda d, t: t["frames"].append(t["frames"][3])), "file_path", "twice"),
    "missing image": (None, lambda d: (d / "images" / "frame_00004.png").unlink(), "file_path", "does not exist"),
    "unreadable image": (
        None,
        lambda d: (d / "images" / "frame_00004.png").write_bytes(b"\0" * 64),
        "frame_00004",
        "unreadable image",
    ),
    "empty test set": (
        None,
        lambda d: (d / "split_indices.json").write_text('{"train": [1, 2, 3], "test": []}'),
        "test set",
        "would be empty",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line(case, scene_dir, tmp_path):
    spec_edit, data_edit, field, problem = CASES[case]
    if case == "cuda-only method":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    data = tmp_path / "data"
    shutil.copytree(scene_dir, data)
    if data_edit:
        data_edit(data)
    text = good_spec(data)
    spec = tmp_path / "bad.yaml"
    spec.write_text(spec_edit(text) if spec_edit else text)
    storage = tmp_path / "sweeps"
    (storage / "bad").mkdir(parents=True)
    (storage / "bad" / "earlier.csv").write_text("kept")
    result = run_cli(str(spec), "--storage", str(storage))
    assert result.returncode == 2, result.stderr[-2000:]
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: "), line
    assert field in line and problem in line, line
    assert [p.name for p in (storage / "bad").iterdir()] == ["earlier.csv"], "nothing under sweeps/ touched"


def test_unwritable_storage_exits_2(scene_dir, tmp_path):
    spec = tmp_path / "ok.yaml"
    spec.write_text(good_spec(scene_dir))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = run_cli(str(spec), "--storage", str(blocker / "sweeps"))
    assert result.returncode == 2 and "--storage: not writable" in result.stderr


def test_restart_moves_the_old_sweep_aside(scene_dir, tmp_path):
    spec = tmp_path / "ok.yaml"
    spec.write_text(good_spec(scene_dir))
    prepared = prepare(spec, tmp_path / "sweeps")
    (prepared.experiment_dir).mkdir(parents=True)
    (prepared.experiment_dir / "results.csv").write_text("old results")
    resume = _resume_decision(prepared, Namespace(restart=True, dry_run=False, force=False))
    assert resume is False and not prepared.experiment_dir.exists()
    (aside,) = [p for p in prepared.storage.iterdir() if p.name.startswith("bad.before-")]
    assert (aside / "results.csv").read_text() == "old results", "moved aside, never deleted"
