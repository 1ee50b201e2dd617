"""Trial folders on disk: the folders of trials that Ray Tune has no record of are set aside whole."""

from nerftune.trials import INTERRUPTED_FOLDER, TrialRecipe, set_aside_unrecorded, trial_folders, write_recipe


def test_folders_of_trials_ray_never_recorded_are_set_aside_whole(tmp_path):
    for name in ("train_trial_a", "train_trial_b", "train_trial_c"):
        folder = tmp_path / name
        folder.mkdir()
        write_recipe(folder, TrialRecipe(name[-1], {"frames": 3}, "tiny", "data", 8, str(folder / "dataset")))
        (folder / "checkpoint_000000").mkdir()
    (tmp_path / "train_trial_d").mkdir()  # a trial Tune recorded that had not started yet: no recipe
    moved = set_aside_unrecorded(tmp_path, {"train_trial_a", "train_trial_c", "train_trial_d"})
    assert moved == [tmp_path / INTERRUPTED_FOLDER / "train_trial_b"]
    assert (moved[0] / "trial.json").is_file() and (moved[0] / "checkpoint_000000").is_dir()
    assert [folder.name for folder in trial_folders(tmp_path)] == ["train_trial_a", "train_trial_c"]
    assert (tmp_path / "train_trial_d").is_dir()
    assert set_aside_unrecorded(tmp_path, {"train_trial_a", "train_trial_c"}) == [], "nothing else to move"


def test_the_mlflow_run_of_a_trial_ray_never_recorded_is_closed_killed(tmp_path):
    """A trial that started before the kill but not in Ray's saved state leaves an MLflow run open under the sweep's;
    when the resumed sweep ends, it is closed KILLED and says why (a real MLflow store)."""
    from mlflow import MlflowClient

    from nerftune.tracking import TrackingTarget, TrialRun
    from nerftune.tracking_sweep import SET_ASIDE, finish_sweep, start_sweep

    uri, spec = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "spec.yaml"
    spec.write_text("name: kill\n")
    local = TrackingTarget(uri, "kill", artifact_root=(tmp_path / "mlartifacts").as_uri())  # as a sweep's own store
    target, failures = start_sweep(local, spec, {"a": 1}, {}, (["a"], "psnr", "max"))
    assert not failures
    runs = {trial_id: TrialRun(target, trial_id, f"trial {trial_id}", tmp_path / trial_id) for trial_id in "ab"}
    results = tmp_path / "results.csv"
    results.write_text("trial_id\na\n")
    summary = [{"trial_id": "a", "stop_reason": "completed", "steps_done": 8, "final": {}}]
    assert not finish_sweep(target, summary, {}, results)
    client = MlflowClient(uri)
    recorded, set_aside = (client.get_run(runs[trial_id].run_id) for trial_id in "ab")
    assert (recorded.info.status, recorded.data.tags["stop_reason"]) == ("FINISHED", "completed")
    assert (set_aside.info.status, set_aside.data.tags["stop_reason"]) == ("KILLED", SET_ASIDE)
    assert client.get_run(target.parent_run_id).info.status == "FINISHED"
