"""The report of a sweep that no trial has recorded anything in yet (just started, or every trial failed before it
could write its folder) says so, instead of failing on an empty table."""

from nerftune.preflight import prepare
from nerftune.report import build_report
from nerftune.state import new_state, write_state


def test_a_sweep_without_any_trial_folder_gets_a_page_that_says_so(scene_dir, write_spec, tmp_path):
    spec = write_spec(
        f"""\
        name: empty
        data: {scene_dir}
        profile: tiny
        space: {{frames: {{values: [3, 12]}}, steps: 30}}
        """
    )
    prepared = prepare(spec, tmp_path / "sweeps")
    write_state(prepared.experiment_dir, new_state(prepared))  # as a sweep does before its first trial starts

    page = build_report(prepared.experiment_dir).read_text()
    assert "No trial of the 2 planned has recorded anything yet" in page
    assert str(prepared.experiment_dir / "sweep.log") in page, "where the failures before that are"
    assert (prepared.experiment_dir / "report" / "provenance.csv").is_file()
