"""A finished study grows by replicate values added to its spec: only the added replicates of the configurations that
completed run, as a round of their own, and the results, the report and MLflow count them with the rest. First what
is decided before anything starts (no Ray), then a real study grown on a local Ray cluster."""

import json
import sys

import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import LR, ctrl_c, interrupted_run, nerftune_command, run_cli
from nerftune.errors import InputError
from nerftune.growth import (
    added_values,
    growth_records,
    planned_growth,
    planned_trials,
    record_round,
    recorded_rounds,
)
from nerftune.schedule import RUNG_BOOK_FILE
from nerftune.spec import parse_spec
from nerftune.state import STATE_FILE, record_growth
from nerftune.trials import TrialRecipe, write_recipe

STUDY = """\
name: grow
data: synthetic:id-card
space:
  frames: {values: [6, 12]}
  seed: {values: SEEDS}
  steps: 60
replicates: seed
"""


def study(seeds: str = "[0, 1]", more: str = "") -> str:
    return STUDY.replace("SEEDS", seeds) + more


def test_values_added_to_one_dimension_alone_grow_a_study():
    old = parse_spec(study())
    assert added_values(old, parse_spec(study("[0, 1, 2, 3]"))) == ("seed", [2, 3])
    assert added_values(old, parse_spec(study("[5, 1, 0]"))) == ("seed", [5]), "order is free: values, not positions"
    assert added_values(old, parse_spec(study().replace("[6, 12]", "[6, 12, 18]"))) == ("frames", [18])
    assert added_values(old, parse_spec(study("[0, 1]"))) is None, "nothing added"
    assert added_values(old, parse_spec(study("[0, 2]"))) is None, "a replicate removed: its trials would go"
    more_steps = study("[0, 1, 2]").replace("steps: 60", "steps: 90")
    assert added_values(old, parse_spec(more_steps)) is None, "another change: the old trials would not compare"
    both = study("[0, 1, 2]").replace("[6, 12]", "[6, 12, 18]")
    assert added_values(old, parse_spec(both)) is None, "two dimensions at once: one growth at a time"


def fake_sweep(folder, outcomes: dict[int, list[str]], finished: bool = True, text: str = study()) -> dict:
    """A sweep folder as a finished run of the spec `text` leaves it: per configuration (frames 6, then 12), its two
    seeds' stop reasons in results.csv and their recipes in trial folders; returns its state."""
    rows = []
    for configuration, reasons in outcomes.items():
        for seed, reason in enumerate(reasons):
            trial_id = f"t{configuration}{seed}"
            config = {"frames": [6, 12][configuration], "seed": seed, "steps": 60, "configuration": configuration}
            (folder / trial_id).mkdir(parents=True)
            write_recipe(folder / trial_id, TrialRecipe(trial_id, config, "tiny", "data", 8, "view"))
            rows.append({"trial_id": trial_id, "configuration": configuration, "stop_reason": reason})
    pd.DataFrame(rows).to_csv(folder / "results.csv", index=False)
    state = {"spec_text": text, "spec_path": str(folder / "grow.yaml")}
    return {**state, "finished": "2026-12-07T10:00:00+0000"} if finished else state


def test_the_added_replicates_go_to_the_configurations_that_completed_and_the_state_keeps_the_round(tmp_path):
    state = fake_sweep(tmp_path, {0: ["completed", "completed"], 1: ["asha_pruned", "asha_pruned"]})
    growth = planned_growth(tmp_path / "grow.yaml", parse_spec(study("[0, 1, 2, 3]")), "grow", tmp_path, state)
    assert growth.round.trials == [
        {"frames": 6, "configuration": 0, "seed": 2},
        {"frames": 6, "configuration": 0, "seed": 3},
    ]
    assert (growth.grown, growth.kept, growth.before, growth.round.number) == (1, 1, 4, 2)
    assert growth.round.folder(tmp_path) == tmp_path / "round-2"
    assert growth.lines(tmp_path) == [
        f"growing the study: seed 2, 3 added to each configuration that completed its steps (1 of 2): 2 new trials "
        f"in {tmp_path / 'round-2'}; the 4 trials that ran are kept"
    ]
    record_round(state, growth)
    assert "finished" not in state, "the sweep runs again"
    assert recorded_rounds(json.loads(json.dumps(state))) == [growth.round], "the round survives the state file"
    assert planned_trials(state, parse_spec(study("[0, 1, 2, 3]"))) == 6, "4 that ran and 2 added, not 2 x 4"
    [(when, what)] = growth_records(state).items()
    assert when.startswith("grown, ")
    assert what == "seed 2, 3 added to each configuration that completed (1): 2 trials in round-2/"
    # a second growth is round 3, and grows what completed in round 2 too
    state["finished"] = "later"
    again = planned_growth(tmp_path / "grow.yaml", parse_spec(study("[0, 1, 2, 3, 4]")), "grow", tmp_path, state)
    assert again.round.number == 3


def test_a_growth_that_cannot_be_is_one_line(tmp_path):
    spec = parse_spec(study("[0, 1, 2]"))
    unfinished = fake_sweep(tmp_path / "a", {0: ["completed", "unfinished"]}, finished=False)
    with pytest.raises(InputError) as raised:
        planned_growth(tmp_path / "grow.yaml", spec, "grow", tmp_path / "a", unfinished)
    assert raised.value.line() == (
        f"{tmp_path / 'grow.yaml'}: space.seed: adds seed 2 to sweep grow, which has not finished (rerun it with "
        "the values it ran with, [0, 1], to finish it; then add them)"
    )
    stopped = fake_sweep(tmp_path / "b", {0: ["asha_pruned", "asha_pruned"], 1: ["error: x", "error: y"]})
    with pytest.raises(InputError, match="none of whose configurations completed its steps"):
        planned_growth(tmp_path / "grow.yaml", spec, "grow", tmp_path / "b", stopped)


LEVELS = "search: {algorithm: grid}\nstratify: frames\n"


def test_added_levels_are_a_study_of_their_own_numbered_on_from_the_sweeps_configurations(tmp_path):
    both_completed = {0: ["completed", "completed"], 1: ["completed", "completed"]}
    state = fake_sweep(tmp_path, both_completed, text=study(more=LEVELS))
    grown = parse_spec(study(more=LEVELS).replace("[6, 12]", "[6, 12, 18, 24]"))
    growth = planned_growth(tmp_path / "grow.yaml", grown, "grow", tmp_path, state)
    assert growth.round.levels == ("frames", [18, 24]) and growth.round.trials is None
    assert (growth.round.count, growth.round.first, growth.before) == (4, 2, 4), "2 levels x 2 seeds, from number 2"
    round_spec = growth.round.spec_of(grown)
    assert round_spec.space["frames"].values == [18, 24] and round_spec.replicate_values == [0, 1]
    assert growth.lines(tmp_path) == [
        f"growing the study: frames 18, 24 added, a study of its own with every replicate: 4 new trials in "
        f"{tmp_path / 'round-2'}; the 4 trials that ran are kept"
    ]
    record_round(state, growth)
    assert recorded_rounds(json.loads(json.dumps(state))) == [growth.round]
    assert planned_trials(state, grown) == 8
    assert list(growth_records(state).values()) == ["frames 18, 24 added: 4 trials in round-2/"]


@pytest.mark.parametrize(
    "sections, problem",
    [
        ("search: {algorithm: grid}\n", "whose scheduler compared configurations across frames"),
        ("search: {algorithm: random}\nstratify: frames\n", "a random search: its searcher weighed the old levels"),
    ],
)
def test_levels_that_would_meet_other_rivals_than_the_old_are_refused(tmp_path, sections, problem):
    state = fake_sweep(tmp_path, {0: ["completed", "completed"]}, text=study(more=sections))
    grown = parse_spec(study(more=sections).replace("[6, 12]", "[6, 12, 18]"))
    with pytest.raises(InputError) as raised:
        planned_growth(tmp_path / "grow.yaml", grown, "grow", tmp_path, state)
    assert f"space.frames: adds frames 18 to sweep grow, {problem}" in raised.value.line()
    fixed = study(more=LEVELS.replace("stratify: frames\n", "")).replace("frames: {values: [6, 12]}", "frames: 6")
    state["spec_text"] = fixed
    listed = parse_spec(fixed.replace("frames: 6", "frames: [6, 12]"))
    with pytest.raises(InputError, match="which it held at one value"):
        planned_growth(tmp_path / "grow.yaml", listed, "grow", tmp_path, state)


def test_a_warm_start_source_is_kept_where_the_added_replicates_leave_its_values(tmp_path):
    state = fake_sweep(tmp_path, {0: ["completed", "completed"]})
    warm = "warm_start: {frames: 12}\n"
    state["spec_text"] = study(more=warm)
    kept = planned_growth(tmp_path / "s.yaml", parse_spec(study("[0, 1, 2]", warm)), "grow", tmp_path, state)
    assert kept.source_kept, "the source trains with seed 0, the first value, before and after"
    moved = planned_growth(tmp_path / "s.yaml", parse_spec(study("[2, 0, 1]", warm)), "grow", tmp_path, state)
    assert not moved.source_kept, "seed 2 first: the source would be another model"


def test_a_dry_run_says_how_the_study_grows_and_a_changed_spec_says_how_one_can(scene_dir, tmp_path):
    storage, spec = tmp_path / "sweeps", tmp_path / "grow.yaml"
    old = study().replace("synthetic:id-card", str(scene_dir))
    folder = storage / "grow"
    state = fake_sweep(folder, {0: ["completed", "completed"], 1: ["completed", "completed"]}, text=old)
    (folder / STATE_FILE).write_text(json.dumps({**state, "spec_hash": "old"}))
    spec.write_text(old.replace("[0, 1]", "[0, 1, 2]"))
    result = run_cli(str(spec), "--storage", str(storage), "--dry-run")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "seed 2 added to each configuration that completed its steps (2 of 2): 2 new trials" in result.stdout
    assert "training: at most 120 steps in all (2 new trials x up to 60)" in result.stdout
    assert not (folder / "round-2").exists() and "rounds" not in json.loads((folder / STATE_FILE).read_text())
    spec.write_text(old.replace("steps: 60", "steps: 90"))
    result = run_cli(str(spec), "--storage", str(storage), "--dry-run")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("; a finished study grows by values added to one dimension alone)")


def test_record_growth_takes_the_grown_spec_as_the_sweeps_own(scene_dir, tmp_path):
    """What a later rerun compares with: the spec it grew to, not the one it started from."""
    from nerftune.preflight import prepare

    spec = tmp_path / "grow.yaml"
    old = study().replace("synthetic:id-card", str(scene_dir))
    spec.write_text(old.replace("[0, 1]", "[0, 1, 2]"))
    prepared = prepare(str(spec), str(tmp_path / "sweeps"), None)
    state = fake_sweep(tmp_path / "sweeps" / "grow", {0: ["completed", "completed"]}, text=old)
    prepared.growth = planned_growth(spec, prepared.spec, "grow", prepared.experiment_dir, state)
    record_growth(state, prepared)
    assert state["spec_text"] == spec.read_text() and len(state["rounds"]) == 1


def real_study(scene_dir, name: str, frames: str, seeds: str, rates: str, more: str = "") -> str:
    """A real study of tiny trials, 2 at a time, on a grid under ASHA (rungs at 20 and 40 of 60 steps)."""
    return f"""\
name: {name}
data: {scene_dir}
profile: tiny
space:
  frames: {frames}
  seed: {{values: {seeds}}}
  steps: 60
  {LR}: {rates}
replicates: seed
search: {{algorithm: grid, seed: 10}}
scheduler: {{type: asha, grace_period: 20, reduction_factor: 2}}
max_concurrent_trials: 2
resources: {{cpu: 1, gpu: 0}}
eval: {{max_images: 1, train_log_every: 10}}
{more}"""


@pytest.mark.slow
def test_a_grown_study_trains_only_the_added_replicates_and_counts_them_everywhere(scene_dir, tmp_path):
    """Two learning rates x seeds 0, 1; ASHA stops the frozen one (lr 1e-7) at its first rung, both seeds together.
    Seed 2 added: one new trial, the learning configuration's, in round-2/, which resumes like any run; a rerun of
    the grown study trains nothing."""
    spec, storage = tmp_path / "grown.yaml", tmp_path / "sweeps"

    def write(seeds: str) -> None:
        spec.write_text(real_study(scene_dir, "grown", "12", seeds, "{values: [1.0e-2, 1.0e-7]}"))

    write("[0, 1]")
    first = run_cli(str(spec), "--storage", str(storage))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    before = pd.read_csv(storage / "grown" / "results.csv")
    learning = int(before[before[LR] > 1e-3].configuration.iloc[0])
    assert (before[before[LR] < 1e-3].stop_reason == "asha_pruned").all(), before.to_string()

    write("[0, 1, 2]")  # the growth stopped with Ctrl-C at its trial's first milestone, then resumed
    command = [sys.executable, "-m", "nerftune.sweep", str(spec), "--storage", str(storage)]
    stopped = interrupted_run(command, ctrl_c, " step 20: ", settle=0)
    assert "seed 2 added to each configuration that completed its steps (1 of 2): 1 new trial" in stopped
    assert stopped.count(" started: ") == 1, "only the added replicate trains"
    assert "interrupted: 4 of 5 trials ended, 1 unfinished, 0 not started" in stopped
    grown = run_cli(str(spec), "--storage", str(storage))
    assert grown.returncode == 0, grown.stdout[-3000:] + grown.stderr[-3000:]
    assert " started: " not in grown.stdout and " continues from step 20" in grown.stdout, grown.stdout[-3000:]
    table = pd.read_csv(storage / "grown" / "results.csv")
    assert len(table) == 5 and set(before.trial_id) < set(table.trial_id)
    [new] = table[~table.trial_id.isin(before.trial_id)].to_dict("records")
    assert (new["seed"], new["configuration"], new["stop_reason"]) == (2, learning, "completed")
    assert list((storage / "grown" / "round-2").glob(f"*{new['trial_id']}*/trial.json")), "in the round's folder"
    assert "over 3 seed replicates" in grown.stdout, "the best configuration's mean takes the new seed"

    page = (storage / "grown" / "report" / "index.html").read_text()
    assert "5 trials of 5 planned" in page and "seed 2 added later (see Provenance)" in page
    provenance = pd.read_csv(storage / "grown" / "report" / "provenance.csv")
    assert provenance.what.str.startswith("grown, ").sum() == 1

    client = MlflowClient(f"sqlite:///{storage / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("grown").experiment_id])
    [sweep_run] = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    trial_runs = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == sweep_run.info.run_id]
    assert len(trial_runs) == 5 and sweep_run.info.status == "FINISHED"
    grown_tag = sweep_run.data.tags["nerftune.grown"]
    assert grown_tag.endswith(": seed 2 added to each configuration that completed (1): 1 trial in round-2/")

    again = run_cli(str(spec), "--storage", str(storage))
    assert again.returncode == 0 and " started: " not in again.stdout, again.stdout[-2000:]
    assert len(pd.read_csv(storage / "grown" / "results.csv")) == 5
    evaluation = nerftune_command("eval", storage / "grown", "--out", tmp_path / "evaluation.csv")
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    assert pd.read_csv(tmp_path / "evaluation.csv").trial_id.nunique() == 5, "every command finds the round's trials"




@pytest.mark.slow
def test_an_added_frame_count_runs_as_a_stratum_of_its_own_and_joins_the_answer(scene_dir, tmp_path):
    """Frames 3 and 12, 2 seeds each, stratified; frames 6 added: its configuration with both seeds, under a
    scheduler of its own (its rung book in round-2/), numbered after the sweep's two configurations."""
    spec, storage = tmp_path / "levels.yaml", tmp_path / "sweeps"
    spec.write_text(real_study(scene_dir, "levels", "{values: [3, 12]}", "[0, 1]", "1.0e-2", "stratify: frames\n"))
    first = run_cli(str(spec), "--storage", str(storage))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    spec.write_text(real_study(scene_dir, "levels", "{values: [3, 12, 6]}", "[0, 1]", "1.0e-2", "stratify: frames\n"))
    grown = run_cli(str(spec), "--storage", str(storage))
    assert grown.returncode == 0, grown.stdout[-3000:] + grown.stderr[-3000:]
    assert "frames 6 added, a study of its own with every replicate: 2 new trials" in grown.stdout
    assert grown.stdout.count(" started: frames=6 ") == 2 and grown.stdout.count(" started: ") == 2
    table = pd.read_csv(storage / "levels" / "results.csv")
    added = table[table.frames == 6]
    assert len(table) == 6 and sorted(added.seed) == [0, 1] and set(added.configuration) == {2}, table.to_string()
    assert (added.stop_reason == "completed").all(), "the first configuration of a stratum always continues"
    book = json.loads((storage / "levels" / "round-2" / RUNG_BOOK_FILE).read_text())
    assert book["decisions"] == {"2": {"20": "continue", "40": "continue"}}, "the round's own scheduler judged it"
    enough = pd.read_csv(storage / "levels" / "report" / "enough_frames.csv")
    assert set(enough.frames) == {3, 6, 12}, enough.to_string()
    assert "frames 6 added later (see Provenance)" in (storage / "levels" / "report" / "index.html").read_text()
