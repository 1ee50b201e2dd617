"""Failing trials are contained: an error or a NaN loss ends that trial only, with its reason in the results; the
best trial is still rendered after the sweep."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow
TESTS = Path(__file__).parent


def test_errored_and_diverged_trials_do_not_stop_the_sweep(scene_dir, write_spec, tmp_path, monkeypatch):
    from failing_methods import ENVIRONMENT

    monkeypatch.setenv("NERFSTUDIO_METHOD_CONFIGS", ENVIRONMENT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    spec = write_spec(
        f"""\
        name: failures
        data: {scene_dir}
        profile: tiny
        space:
          frames: 6
          method: {{values: [nerfacto, nerftune-test-oom, nerftune-test-nan, nerftune-test-killed]}}
          steps: 60
        search: {{algorithm: grid}}
        scheduler: {{type: none}}
        max_failures: 1
        max_concurrent_trials: 2
        resources: {{cpu: 1, gpu: 0}}
        eval: {{max_images: 1, every: 20, train_log_every: 5}}
        render: {{circles: {{radii: [0.3], distances: [1.0], views: 3}}, trials: best, best_k: 1}}
        """
    )
    storage = tmp_path / "sweeps"
    result = run_cli(str(spec), "--storage", str(storage))
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(storage / "failures" / "results.csv").set_index("method")
    assert table.loc["nerfacto", "stop_reason"] == "completed"
    assert table.loc["nerfacto", "steps_done"] == 60
    oom = table.loc["nerftune-test-oom", "stop_reason"]
    assert oom.startswith("error: ") and "CUDA out of memory" in oom
    nan = table.loc["nerftune-test-nan", "stop_reason"]
    assert nan.startswith("error: ") and "diverged at step 50" in nan, nan
    # it reported step 20, failed at 30, was retried once from its step-20 checkpoint, reported 40 and failed at 50
    assert table.loc["nerftune-test-oom", "steps_done"] == 40
    assert table.loc["nerftune-test-oom", "resumed_from_step"] == 20
    # the console says each failure, once per failed attempt, on stderr; the retry too
    oom_id = table.loc["nerftune-test-oom", "trial_id"]
    assert f"warning: trial {oom_id} failed after step 20; retrying from its last checkpoint" in result.stderr
    assert f"warning: trial {oom_id} failed: RuntimeError: CUDA out of memory" in result.stderr, result.stderr[-3000:]
    # a trial whose process was killed (as by the out-of-memory killer) says so, not Ray's paragraph of causes
    killed = table.loc["nerftune-test-killed"]
    assert killed.stop_reason.startswith("error: its process died (killed from outside: most often by the system's "
                                         "out-of-memory killer"), killed.stop_reason
    assert killed.steps_done == 40 and killed.resumed_from_step == 20, "retried once from its checkpoint, as the oom"
    assert f"warning: trial {killed.trial_id} failed: its process died" in result.stderr
    # the best trial (the one that completed) was rendered after the sweep, and only it
    rendered = [p.parent.parent.parent for p in (storage / "failures").glob("*/renders/circles/views.csv")]
    assert len(rendered) == 1
    assert json.loads((rendered[0] / "trial.json").read_text())["trial_id"] == table.loc["nerfacto", "trial_id"]
    assert "rendered trial" in result.stdout and "(and MLflow)" in result.stdout
    # the report lists the errored trials and leaves them out of its statistics
    report = storage / "failures" / "report"
    errors = pd.read_csv(report / "errors.csv")
    failed = ["nerftune-test-oom", "nerftune-test-nan", "nerftune-test-killed"]
    assert sorted(errors.trial_id) == sorted(table.loc[failed, "trial_id"])
    assert errors.set_index("trial_id").stop_reason[killed.trial_id] == killed.stop_reason, "read from its folder"
    assert pd.read_csv(report / "cost_per_trial.csv").trial_id.nunique() == 4, "their cost counts"
    assert "Errored trials" in (report / "index.html").read_text()

    # --retry-errored on the next run continues the errored trials from their last checkpoint (step 40); the test
    # methods count their steps afresh in a new process, so this time all three reach step 60
    retried = run_cli(str(spec), "--storage", str(storage), "--retry-errored")
    assert retried.returncode == 0, retried.stderr[-3000:]
    table = pd.read_csv(storage / "failures" / "results.csv").set_index("method")
    for method in failed:
        assert table.loc[method, "stop_reason"] == "completed" and table.loc[method, "steps_done"] == 60
        assert table.loc[method, "resumed_from_step"] == 40
    assert table.loc["nerfacto", "resumed_from_step"] == 0, "a finished trial is not run again"
