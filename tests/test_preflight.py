"""Pre-flight checks that need the dataset, nerfstudio's method registry and the machine."""

import pytest

from nerftune.errors import InputError
from nerftune.preflight import prepare

from conftest import run_cli


def spec_text(scene_dir, extra="", frames="[2, 8]", method="nerfacto"):
    return f"""\
name: t
data: {scene_dir}
space:
  frames: {{values: {frames}}}
  method: {method}
  steps: 50
{extra}"""


def test_a_good_spec_prepares(scene_dir, write_spec, tmp_path):
    prepared = prepare(write_spec(spec_text(scene_dir)), tmp_path / "sweeps")
    assert prepared.data_dir == scene_dir
    assert len(prepared.dataset.pool) == 21
    assert any("no GPU" in w for w in prepared.warnings) or prepared.gpus > 0


CASES = {
    "frames larger than the pool": (dict(frames="[2, 22]"), "space.frames", "22 frames asked, but"),
    "unknown method": (dict(method="nerfactoo"), "space.method", "valid: "),
    "cuda-only method": (dict(method="splatfacto"), "space.method", "needs a CUDA GPU"),
    "unknown config field": (
        dict(extra="  pipeline.model.hidden_dimm: {values: [8, 16]}\n"),
        "hidden_dimm",
        "has no field",
    ),
    "wrong config type": (dict(extra="  pipeline.model.hidden_dim: {values: [8.5]}\n"), "hidden_dim", "is an integer"),
    "not a choice": (
        dict(extra="  pipeline.model.implementation: {values: [cuda]}\n"),
        "implementation",
        "must be one of",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_before_anything_starts(case, scene_dir, write_spec, tmp_path):
    kwargs, field, problem = CASES[case]
    if case == "cuda-only method":
        pytest.importorskip("torch")
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    with pytest.raises(InputError) as caught:
        prepare(write_spec(spec_text(scene_dir, **kwargs)), tmp_path / "sweeps")
    assert field in str(caught.value) and problem in str(caught.value), str(caught.value)


def test_unwritable_storage(scene_dir, write_spec, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="--storage: not writable"):
        prepare(write_spec(spec_text(scene_dir)), blocker / "sweeps")


def test_cli_exit_status_2_and_existing_sweeps_untouched(scene_dir, write_spec, tmp_path):
    storage = tmp_path / "sweeps"
    (storage / "t").mkdir(parents=True)
    keep = storage / "t" / "precious.txt"
    keep.write_text("earlier results")
    result = run_cli(str(write_spec(spec_text(scene_dir, frames="[30]"))), "--storage", str(storage))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and "space.frames" in result.stderr
    assert sorted(p.name for p in (storage / "t").iterdir()) == ["precious.txt"]
    assert keep.read_text() == "earlier results"


def test_dry_run_prints_the_plan_without_starting_ray(scene_dir, write_spec, tmp_path):
    text = spec_text(
        scene_dir, extra="scheduler: {grace_period: 10, reduction_factor: 2}\nresources: {cpu: 1, gpu: 0}\n"
    )
    result = run_cli(str(write_spec(text)), "--dry-run", "--storage", str(tmp_path / "sweeps"))
    assert result.returncode == 0, result.stderr
    assert "rungs at steps 10, 20, 40" in result.stdout
    assert "frames: 2, 8" in result.stdout and "resources per trial: 1 cpu" in result.stdout
    assert not (tmp_path / "sweeps" / "t").exists(), "a dry run starts no sweep"
