"""Bad input of `nerftune sweep` beyond the spec file itself (tests/test_spec.py has those): the data, the methods and
nerfstudio fields, storage. Each once: one line naming file and field, exit status 2, nothing under sweeps/ touched.
In-process (the command's `main`); two cases run the real command in its own process."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nerftune import sweep
from nerftune.machine import visible_gpus
from nerftune.preflight import prepare
from nerftune.state import record_forced, resume_decision

from conftest import ROOT


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
    "unknown method": (lambda t: t + "  method: nerfacto2\n", None, "space.method", "valid: "),
    "cuda-only method": (lambda t: t + "  method: instant-ngp\n", None, "space.method", "needs a CUDA GPU"),
    "unknown config field": (
        lambda t: t + "  pipeline.model.hidden_dimm: {values: [8, 16]}\n",
        None,
        "hidden_dimm",
        "has no field",
    ),
    "wrong config type": (lambda t: t + "  pipeline.model.hidden_dim: 8.5\n", None, "hidden_dim", "is an integer"),
    "a trainer setting of the wrong type": (
        lambda t: t + "  mixed_precision: 3\n",
        None,
        "space.mixed_precision",
        "mixed_precision is a boolean, not an integer (3)",
    ),
    "not a choice": (lambda t: t + "  pipeline.model.implementation: cuda\n", None, "implementation", "one of"),
    "a list where a number goes": (
        lambda t: t + "  pipeline.model.hidden_dim: {values: [[64, 32]]}\n",
        None,
        "space.pipeline.model.hidden_dim",
        "is an integer, not list",
    ),
    "gpu auto without a GPU": (
        lambda t: t.replace("gpu: 0", "gpu: auto"),
        None,
        "resources.gpu",
        "no GPU is visible here",
    ),
    "negative gpu": (lambda t: t.replace("gpu: 0", "gpu: -1"), None, "resources.gpu", "a share of a GPU"),
    # Ray would wait for ever for a trial that no node can hold
    "more CPUs than this machine has": (
        lambda t: t.replace("gpu: 0", "gpu: 0, cpu: 100000"),
        None,
        "resources.cpu",
        "each trial asks for 100000 CPUs, and this machine has",
    ),
    "a cluster's custom resource on this machine": (
        lambda t: t.replace("gpu: 0", "gpu: 0, custom: {a100: 1}"),
        None,
        "resources.custom",
        "a100: only the nodes of a Ray cluster started with them have custom resources",
    ),
    "fast path without a hash grid": (
        lambda t: t + "  method: vanilla-nerf\nfast_path: true\n",
        None,
        "fast_path",
        "vanilla-nerf has no nerfstudio hash grid",
    ),
    "a fast path of no known kind": (
        lambda t: t + "fast_path: fastest\n",
        None,
        "fast_path",
        "'fastest' is not a fast path (use auto, true, false, compiled-step, cuda-graphs, triton)",
    ),
    "a fast path written as a mapping": (
        lambda t: t + "fast_path: {kind: graphs}\n",
        None,
        "fast_path",
        "{'kind': 'graphs'} is not a fast path",
    ),
    "a kind of fast path for CUDA on a machine without a GPU": (
        lambda t: t + "fast_path: cuda-graphs\n",
        None,
        "fast_path",
        "cuda-graphs needs a CUDA GPU and none is visible (use fast_path: compiled-step or auto on the CPU)",
    ),
    "a named kind of fast path for a method without a hash grid": (
        lambda t: t + "  method: vanilla-nerf\nfast_path: compiled-step\n",
        None,
        "fast_path",
        "vanilla-nerf has no nerfstudio hash grid",
    ),
    "one paths file for two scenes": (
        lambda t: (
            t.replace("space:", "render: {paths: card_paths.json}\nspace:")
            .replace("data: ", "data: [")
            .replace("\nresources", ", {path: synthetic:id-card, name: synth}]\nresources")
        ),
        None,
        "render.paths",
        "a paths file fits one dataset, and this study has 2",
    ),
    "downscaled data for per-subset poses": (
        lambda t: t.replace("data: ", "data: {path: ").replace("\nresources", ", downscale: 2}\nresources")
        + "  poses: {values: [global, per_subset]}\n",
        None,
        "data.downscale",
        "poses: per_subset runs SfM again on the capture's frames at their own size",
    ),
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


def bad_setup(case: str, scene_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The case's spec and a storage folder holding an earlier sweep's file, which must survive."""
    spec_edit, data_edit, _, _ = CASES[case]
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
    return spec, storage


def assert_one_line_and_untouched(line: str, case: str, storage: Path) -> None:
    _, _, field, problem = CASES[case]
    line = line.strip()
    assert "\n" not in line and line.startswith("error: "), line
    assert field in line and problem in line, line
    assert [p.name for p in (storage / "bad").iterdir()] == ["earlier.csv"], "nothing under sweeps/ touched"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line(case, scene_dir, tmp_path, capsys):
    if case in ("cuda-only method", "gpu auto without a GPU") and visible_gpus():
        pytest.skip("this machine has a GPU")
    spec, storage = bad_setup(case, scene_dir, tmp_path)
    assert sweep.main([str(spec), "--storage", str(storage)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line_and_untouched(captured.err, case, storage)


def sweep_command(spec: Path, storage: Path, **options) -> subprocess.CompletedProcess:
    """The real command in its own process (`options`: more of subprocess.run's)."""
    command = [sys.executable, "-m", "nerftune.sweep", str(spec), "--storage", str(storage)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, **options)


def test_the_command_answers_bad_input_at_once_in_its_own_process(scene_dir, tmp_path):
    """The process boundary: the real command, its exit status and stderr, in well under 3 seconds."""
    spec, storage = bad_setup("unknown method", scene_dir, tmp_path)
    start = time.perf_counter()
    result = sweep_command(spec, storage)
    seconds = time.perf_counter() - start
    assert result.returncode == 2, result.stderr
    assert_one_line_and_untouched(result.stderr, "unknown method", storage)
    assert seconds < 10, f"{seconds:.1f} s (the benchmark measures it properly: benchmarks/cli.py)"


def test_unwritable_storage_exits_2(scene_dir, tmp_path, capsys):
    spec = tmp_path / "ok.yaml"
    spec.write_text(good_spec(scene_dir))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    assert sweep.main([str(spec), "--storage", str(blocker / "sweeps")]) == 2
    assert "--storage: not writable" in capsys.readouterr().err


def test_restart_moves_the_old_sweep_aside(scene_dir, tmp_path):
    spec = tmp_path / "ok.yaml"
    spec.write_text(good_spec(scene_dir))
    prepared = prepare(spec, tmp_path / "sweeps")
    (prepared.experiment_dir).mkdir(parents=True)
    (prepared.experiment_dir / "results.csv").write_text("old results")
    resume = resume_decision(prepared, restart=True, force=False, dry_run=False)
    assert resume is False and not prepared.experiment_dir.exists()
    (aside,) = [p for p in prepared.storage.iterdir() if p.name.startswith("bad.before-")]
    assert (aside / "results.csv").read_text() == "old results", "moved aside, never deleted"


def test_data_changed_under_a_sweep_is_refused_on_resume(scene_dir, tmp_path, capsys):
    """Another `nerftune prepare` into the data folder names its frames as before: the frames' content tells."""
    from nerftune.state import new_state, read_state, write_state

    data = tmp_path / "data"
    shutil.copytree(scene_dir, data)
    spec = tmp_path / "ok.yaml"
    spec.write_text(good_spec(data))
    storage = tmp_path / "sweeps"
    prepared = prepare(spec, storage)
    write_state(prepared.experiment_dir, new_state(prepared))  # as a sweep that ran on the data
    before = sorted(p.name for p in prepared.experiment_dir.iterdir())

    (scene,) = prepared.scenes.values()
    test_frame = scene.dataset.test_names[1]
    edit_transforms(lambda _, t: next(f for f in t["frames"] if f["file_path"] == test_frame).update(fl_x=99.0))(data)
    assert sweep.main([str(spec), "--storage", str(storage), "--dry-run"]) == 2  # the same check, nothing launched
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and line.startswith(f"error: {data / 'transforms.json'}: "), line
    assert f"changed since sweep bad started: 1 frame(s) with another image or camera ({test_frame})" in line
    assert "test frames among them" in line and "--force" in line and "--restart" in line
    assert sorted(p.name for p in prepared.experiment_dir.iterdir()) == before, "nothing touched"

    assert sweep.main([str(spec), "--storage", str(storage), "--force", "--dry-run"]) == 0
    warning = capsys.readouterr().err
    assert f"warning: --force: resuming sweep bad although the data of {data} changed: 1 frame(s)" in warning
    forced = prepare(spec, storage)
    assert resume_decision(forced, restart=False, force=True, dry_run=False) is True
    [what] = forced.forced
    assert what.startswith(f"the data of {data} changed: 1 frame(s) with another image or camera ({test_frame})")
    state = read_state(forced.experiment_dir)
    record_forced(state, forced)
    assert [entry["over"] for entry in state["forced_resumes"]] == [what], "kept in the state file for the report"
    write_state(forced.experiment_dir, state)
    again = prepare(spec, storage)
    assert resume_decision(again, restart=False, force=False, dry_run=False), "the data it resumed on is its own now"
    assert again.forced == [] and read_state(forced.experiment_dir)["forced_resumes"][0]["over"] == what


def test_the_command_lists_its_commands_and_refuses_unknown_ones(capsys):
    from nerftune.cli import COMMANDS, main

    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in COMMANDS) and "run or resume a sweep" in listed
    assert main(["sweeps/demo"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown command 'sweeps/demo'; usage: nerftune {sweep,")
    assert main([]) == 2 and capsys.readouterr().err.startswith("usage: nerftune")


def test_the_command_says_its_version_and_the_stacks_for_a_bug_report():
    from importlib.metadata import version

    script = "import sys; from nerftune.cli import main; main(['--version']); print(sorted(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    line, modules = result.stdout.splitlines()
    assert line == (
        f"nerftune {version('nerftune')} (nerfstudio {version('nerfstudio')}, ray {version('ray')}, torch "
        f"{version('torch')}, optuna {version('optuna')}, mlflow {version('mlflow')}, pycolmap {version('pycolmap')})"
    )
    assert not {"torch", "ray", "nerfstudio", "mlflow", "pycolmap"} & set(eval(modules)), "read, not imported"


@pytest.mark.parametrize("command", ["sweep", "prepare", "paths", "eval", "report", "replay", "export"])
def test_each_commands_help_says_its_whole_summary(command, capsys):
    """`nerftune COMMAND --help` gives the summary its module's docstring starts with, never cut off mid-sentence."""
    import importlib

    from nerftune.cli import COMMANDS, main

    doc = importlib.import_module(COMMANDS[command][0].split(":")[0]).__doc__
    summary = " ".join(doc.split("\n\n")[0].split())
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    shown = " ".join(re.sub(r"-\n\s*", "-", capsys.readouterr().out).split())  # argparse wraps after hyphens
    assert summary.endswith((".", ")")) and summary in shown, shown


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_a_trial_may_ask_only_for_the_cpus_the_command_may_run_on(scene_dir, tmp_path):
    """Run on one CPU (as `taskset -c 0` or a batch job's allocation does), a trial of 2 CPUs could never start."""
    spec, storage = bad_setup("unknown method", scene_dir, tmp_path)
    spec.write_text(good_spec(tmp_path / "data").replace("gpu: 0", "gpu: 0, cpu: 2"))
    result = sweep_command(spec, storage, preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {spec}: resources.cpu: each trial asks for 2 CPUs, and this machine has 1 " \
        "(ask for at most 1, or give --address of a Ray cluster with bigger nodes)\n"


def test_an_output_that_cannot_be_written_is_one_line_and_missing_folders_are_made(scene_dir, tmp_path, capsys):
    from nerftune.cli import main
    from nerftune.errors import InputError, output_place

    (tmp_path / "a_file").write_text("")
    for out, problem in (
        (tmp_path / "a_file" / "new" / "p.json", f"{tmp_path / 'a_file'} is a file, not a folder"),
        (tmp_path, "is a folder"),
    ):
        assert main(["paths", str(scene_dir), "--views", "2", "--out", str(out)]) == 2
        assert capsys.readouterr().err == f"error: {out}: --out: {problem} (choose another path)\n"
    made = tmp_path / "new" / "deeper" / "p.json"
    assert main(["paths", str(scene_dir), "--views", "2", "--out", str(made)]) == 0 and made.is_file()
    with pytest.raises(InputError, match="a_file: --out: is a file"):
        output_place(tmp_path / "a_file", folder=True)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if not os.access(locked, os.W_OK):  # root may write anywhere
        with pytest.raises(InputError, match="locked is not writable"):
            output_place(locked / "sub" / "p.json")
    assert not (tmp_path / "a_file").is_dir() and not (locked / "sub").exists(), "nothing made by the check"
