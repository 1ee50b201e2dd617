"""A restored sweep whose state names a checkpoint that is gone or damaged: real Ray Tune runs of a small function
trainable (no model: a torch-saved tensor stands in for it), interrupted by an error and restored as nerftune does."""

import json
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import ray
import torch
from ray import cloudpickle, tune

from nerftune.checkpoint_repair import CheckpointRepair, intact
from nerftune.trials import CHECKPOINT_FILE, MILESTONE_FILE

pytestmark = pytest.mark.slow

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import the tests folder

STEPS = (10, 20, 30)  # a checkpoint at each; the first run fails after the last, the second reports once


def train(config):
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            step = json.loads((Path(folder) / MILESTONE_FILE).read_text())["step"]
            assert torch.load(Path(folder) / CHECKPOINT_FILE).item() == step
        report(step + 5, resumed_from=step)
        return
    marker = Path(config["markers"]) / config["case"]
    if marker.exists():  # a second run with no checkpoint: from step 0
        report(5, resumed_from=0)
        return
    for step in STEPS:
        report(step)
    marker.touch()
    raise RuntimeError("interrupted")


def report(step: int, **metrics) -> None:
    """Report a step with a checkpoint laid out as nerftune's: the model file and the milestone beside it."""
    with tempfile.TemporaryDirectory() as folder:
        torch.save(torch.tensor(step), Path(folder) / CHECKPOINT_FILE)
        (Path(folder) / MILESTONE_FILE).write_text(json.dumps({"step": step}))
        tune.report({"step": step, **metrics}, checkpoint=tune.Checkpoint.from_directory(folder))


@pytest.fixture
def own_ray():
    """A Ray of this test's own, as a sweep starts one: Tune alone joins the cluster `ray start` last left here."""
    ray.init(address="local", include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


def test_a_restored_trial_continues_from_its_newest_intact_checkpoint(own_ray, tmp_path, capfd):
    cases = ["whole", "gone", "damaged", "none left"]
    space = {"case": tune.grid_search(cases), "markers": str(tmp_path)}
    tuner = tune.Tuner(
        train,
        param_space=space,
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(
            name="repair",
            storage_path=str(tmp_path),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[CheckpointRepair()],
            verbose=0,
        ),
    )
    first = tuner.fit()
    trial_dirs = {result.config["case"]: Path(result.path) for result in first}
    assert all(result.error for result in first)
    for folder in trial_dirs.values():
        assert sorted(p.name for p in folder.glob("checkpoint_*")) == ["checkpoint_000001", "checkpoint_000002"]
        assert all(intact(p) for p in folder.glob("checkpoint_*"))

    shutil.rmtree(trial_dirs["gone"] / "checkpoint_000002")  # as Ray does when the sweep is killed at a bad time
    model = trial_dirs["damaged"] / "checkpoint_000002" / CHECKPOINT_FILE
    model.write_bytes(model.read_bytes()[:-40])  # cut short, as a full disk leaves it
    assert not intact(model.parent)
    for folder in trial_dirs["none left"].glob("checkpoint_*"):
        shutil.rmtree(folder)

    restored = tune.Tuner.restore(str(tmp_path / "repair"), train, resume_errored=True)
    second = {result.config["case"]: result for result in restored.fit()}
    assert not any(result.error for result in second.values()), [r.error for r in second.values()]
    resumed = {case: result.metrics["resumed_from"] for case, result in second.items()}
    assert resumed == {"whole": 30, "gone": 20, "damaged": 20, "none left": 0}
    err = capfd.readouterr().err
    assert "its checkpoint checkpoint_000002 is gone: it continues from checkpoint_000001 (step 20)" in err
    assert "its checkpoint checkpoint_000002 is damaged: it continues from checkpoint_000001 (step 20)" in err
    assert "no other is intact: it starts again from step 0" in err
    assert err.count("warning: trial") == 3, "the whole trial is left alone"
    # a continued trial's next checkpoint follows the one it continued from, and Ray rotates them as before
    names = {case: sorted(p.name for p in folder.glob("checkpoint_*")) for case, folder in trial_dirs.items()}
    assert names["whole"] == ["checkpoint_000002", "checkpoint_000003"]
    assert names["gone"] == names["damaged"] == ["checkpoint_000001", "checkpoint_000002"]
    assert all(intact(p) for folder in trial_dirs.values() for p in folder.glob("checkpoint_*"))
    assert torch.load(trial_dirs["damaged"] / "checkpoint_000002" / CHECKPOINT_FILE).item() == 25
