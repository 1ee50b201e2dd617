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
