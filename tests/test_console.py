"""The console: while a sweep runs, only nerftune's own lines reach the terminal; everything else goes to the log."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from nerftune.console import TABLE_ROWS, summary_lines
from nerftune.quiet import quiet_output, terminal
from nerftune.spec import parse_spec


def test_quiet_output_sends_all_other_output_to_the_log(tmp_path, capfd):
    log = tmp_path / "sweep.log"
    with quiet_output(log, verbose=False) as screen:
        print("python chatter")
        print("python errors", file=sys.stderr)
        os.write(1, b"native chatter\n")
        subprocess.run(["echo", "a child process"], check=True)
        screen.say("trial abc started: frames=3")
        screen.warn("trial abc failed: boom")
        assert terminal() is screen, "Ray callbacks find the same terminal"
    out, err = capfd.readouterr()
    assert out == "trial abc started: frames=3\n"
    assert err == "warning: trial abc failed: boom\n"
    text = log.read_text()
    for line in ("python chatter", "python errors", "native chatter", "a child process"):
        assert line in text
    print("after")
    assert capfd.readouterr().out == "after\n", "the terminal is back"


def test_verbose_leaves_the_terminal_alone(tmp_path, capfd):
    with quiet_output(tmp_path / "sweep.log", verbose=True) as screen:
        print("everything")
        screen.say("ours")
    assert capfd.readouterr().out == "everything\nours\n"
    assert not (tmp_path / "sweep.log").exists()


def test_summary_is_the_table_the_best_trial_and_the_results_file(tmp_path):
    table = pd.DataFrame(
        {
            "trial_id": ["a", "b"],
            "frames": [12, 3],
            "best_psnr": [21.5, None],
            "steps_done": [90, 30],
            "stop_reason": ["completed", "error: boom"],
            "steps_per_s": [10.0, 9.0],
        }
    )
    lines = summary_lines(table, spec("frames: [12, 3]"), tmp_path)
    assert lines[0].split() == ["trial_id", "frames", "best_psnr", "steps_done", "stop_reason", "steps_per_s"]
    assert lines[-2] == "best trial a: psnr 21.500 (frames=12)"
    assert lines[-1] == f"results: {tmp_path / 'results.csv'}"
    assert summary_lines(table, spec("frames: 12"), tmp_path)[-2] == "best trial a: psnr 21.500", "nothing searched"


def test_a_long_sweeps_table_shows_its_best_trials_and_counts_the_rest(tmp_path):
    count = TABLE_ROWS + 12
    table = pd.DataFrame(
        {
            "trial_id": [f"t{i}" for i in range(count)],
            "frames": [12] * count,
            "best_psnr": [30.0 - i for i in range(TABLE_ROWS + 1)] + [None] * 11,
            "steps_done": [90] * (TABLE_ROWS + 1) + [30] * 11,
            "stop_reason": ["completed"] * (TABLE_ROWS + 1) + ["asha_pruned"] * 10 + ["error: boom: at step 30"],
            "steps_per_s": [10.0] * count,
        }
    )
    lines = summary_lines(table, spec("frames: [12, 3]"), tmp_path)
    assert [line.split()[0] for line in lines[1 : TABLE_ROWS + 1]] == [f"t{i}" for i in range(TABLE_ROWS)]
    more = "... and 12 more trials (10 asha_pruned, 1 completed, 1 error): every one in results.csv"
    assert lines[TABLE_ROWS + 1] == more
    assert lines[-2] == "best trial t0: psnr 30.000 (frames=12)"


def spec(space: str, replicates: str = ""):
    return parse_spec(f"name: s\ndata: synthetic:id-card\nspace: {{{space}, steps: 10}}\n{replicates}")


def test_a_study_names_its_best_configuration_by_the_mean_of_its_replicates(tmp_path):
    # frames=12 has the luckiest seed (24.0) but frames=6 the better mean: the study's answer is frames=6
    table = pd.DataFrame(
        {
            "trial_id": list("abcde"),
            "configuration": [0, 0, 1, 1, 2],
            "frames": [6, 6, 12, 12, 24],
            "seed": [0, 1, 0, 1, 0],
            "psnr": [22.0, 23.0, 24.0, 18.0, 30.0],
            "best_psnr": [22.0, 23.0, 24.0, 18.0, None],  # empty for a stopped trial, as in results.csv
            "stop_reason": ["completed"] * 4 + ["asha_pruned"],
        }
    )
    study = spec("frames: [6, 12, 24], seed: [0, 1]", "replicates: seed\n")
    lines = summary_lines(table.sort_values("best_psnr", ascending=False), study, tmp_path)
    assert lines[-5].startswith("best trial c: psnr 24.000")
    assert lines[-4] == (
        "best configuration (frames=6): psnr 22.500 over 2 seed replicates (22.000 to 23.000; 95 % interval 16.15 "
        "to 28.85)"
    ), lines[-4]
    # and whether it is told apart from the runner-up: 1.5 dB ahead of seeds 6 dB apart is no finding
    next_best = "next best (frames=12): psnr 21.000; the best beats it with probability 0.63 (Welch's p 0.7)"
    assert lines[-3] == next_best, lines[-3]
    assert "frames=24" not in lines[-4] + lines[-3], "a stopped configuration is no answer"
    # and how many frames are enough, among those compared (24 frames was stopped)
    assert lines[-2].startswith("how many frames are enough: the most frames compared, 12, scored 21.000 (psnr); 6 ")
    only_one = table.assign(stop_reason=["completed"] * 2 + ["asha_pruned"] * 3)
    assert summary_lines(only_one, study, tmp_path)[-2].startswith("best configuration (frames=6)"), "no runner-up"
    none_done = table.assign(stop_reason="asha_pruned")
    assert "no best configuration yet" in summary_lines(none_done, study, tmp_path)[-2]
    assert len(summary_lines(table, spec("frames: [6, 12, 24], seed: [0, 1]"), tmp_path)) == len(table) + 3


@pytest.mark.parametrize("stop", ["SIGINT", "SIGUSR1"])
def test_a_stop_signal_after_the_trials_is_pythons_again_and_a_stopped_run_says_so(stop):
    """Tune's own handlers (the real ones) stop a run on Ctrl-C or SIGUSR1; after the run, whether it ended or was
    stopped, the handlers from before are back, so that a signal during the renders stops the command at once."""
    import signal

    from ray.tune.tune import _setup_signal_catching

    from nerftune.tuner import fit_noting_interruption

    number = getattr(signal, stop)

    class Run:
        def __init__(self, signalled: bool):
            self.signalled = signalled

        def fit(self):
            _setup_signal_catching()  # as Tune's run does first
            if self.signalled:
                signal.getsignal(number)(number, None)
            return "grid"

    before = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGUSR1)}
    assert fit_noting_interruption(Run(signalled=False)) == ("grid", False)
    assert {n: signal.getsignal(n) for n in before} == before
    assert fit_noting_interruption(Run(signalled=True)) == ("grid", True)
    assert {n: signal.getsignal(n) for n in before} == before


def test_commands_the_console_suggests_survive_a_path_with_spaces(tmp_path):
    """A researcher's folders have spaces ("ID card/"): the printed `mlflow ui` command is pasted into a shell."""
    import shlex

    from nerftune.tracking import local_target
    from nerftune.tracking_sweep import ui_link

    storage = tmp_path / "ID card" / "sweeps"
    target = local_target(storage, "demo")
    command = ui_link(target).split("(after `", 1)[1].rstrip("`)")
    assert shlex.split(command) == ["mlflow", "ui", "--backend-store-uri", target.uri, "--port", "5000"]


def test_a_trial_that_could_not_compile_its_hash_grid_is_said_once(tmp_path):
    import io
    from types import SimpleNamespace

    from nerftune.console import LiveView
    from nerftune.quiet import Terminal

    view = LiveView(trials=2, max_steps=100, metric="psnr", dimensions=[])
    view.setup()
    err = io.StringIO()
    view.terminal = Terminal(io.StringIO(), err)
    trials = [SimpleNamespace(trial_id=name, status="RUNNING", last_result={}, config={}) for name in "ab"]
    result = {"step": 50, "psnr": 20.0, "lpips": 0.1}
    view.on_trial_result(1, trials, trials[0], result)
    assert err.getvalue() == "", "compiled, or eager where it did not pay: nothing to say"
    failed = {**result, "compile_error": "InductorError: InvalidCxxCompiler: No working C++ compiler found"}
    for trial in trials:
        view.on_trial_result(2, trials, trial, {**failed, "step": 100})
    assert err.getvalue().count("warning: ") == 1, err.getvalue()
    assert ("warning: trial a runs its hash grid as eager code (on the CPU, training about 1.8x and scoring 4x "
            "slower than compiled): torch.compile failed "
            "(InductorError: InvalidCxxCompiler: No working C++ compiler found); install a C++ compiler (g++, or set "
            "$CXX)") in err.getvalue()


def test_without_a_terminal_the_console_says_the_steps_done_and_time_left_every_ten_minutes():
    """A batch job's log has no progress bar: a line at a trial event, at most every 10 minutes, of the steps done
    of those still possible and the time left at this run's pace (steps a resumed sweep had trained before it do not
    count towards its pace)."""
    import io
    from types import SimpleNamespace

    from nerftune.console import LiveView
    from nerftune.quiet import Terminal

    view = LiveView(trials=4, max_steps=1000, metric="psnr", dimensions=[])
    view.setup()
    out = io.StringIO()
    view.terminal = Terminal(out, io.StringIO())
    assert view.bar.disable, "pytest's output is no terminal"
    now = [0.0]
    view.clock = lambda: now[0]
    view.start = view.said_progress = 0.0
    trial = lambda name, status, step: SimpleNamespace(  # noqa: E731
        trial_id=name, status=status, last_result={"step": step}, config={}
    )
    # resumed: trial a had trained 500 steps before this run
    view.on_trial_start(0, [trial("a", "RUNNING", 500)], trial("a", "RUNNING", 500))
    now[0] = 900.0
    trials = [trial("a", "RUNNING", 1000), trial("b", "RUNNING", 400)]
    view.on_trial_result(1, trials, trials[1], {"step": 400, "psnr": 20.0, "lpips": 0.1})
    progress = [line for line in out.getvalue().splitlines() if "progress:" in line]
    # 1,400 of up to 1,000 + 1,000 + 2 x 1,000 not started = 4,000; 900 steps in 900 s: 2,600 s left
    assert progress == [
        "[00:15:00] progress: 1,400 of up to 4,000 steps (35 %), 0 of 4 trials ended; up to about 43 min left at this "
        "run's pace so far (1.0 steps/s)"
    ]
    now[0] = 1000.0
    trials[0].status = "TERMINATED"
    view.on_trial_complete(2, trials, trials[0])
    assert sum("progress:" in line for line in out.getvalue().splitlines()) == 1, "not again within 10 minutes"
    now[0] = 1600.0
    trials[1].last_result = {"step": 800}
    view.on_trial_result(3, trials, trials[1], {"step": 800, "psnr": 21.0, "lpips": 0.1})
    # 1,800 of 1,000 (a, ended) + 1,000 + 2,000; 1,300 steps in 1,600 s: 2,708 s left
    assert [line for line in out.getvalue().splitlines() if "progress:" in line][-1] == (
        "[00:26:40] progress: 1,800 of up to 4,000 steps (45 %), 1 of 4 trials ended; up to about 45 min left at this "
        "run's pace so far (0.8 steps/s)"
    )


def test_a_study_of_seeds_alone_gives_its_one_configuration_without_naming_a_best(tmp_path):
    table = pd.DataFrame(
        {
            "trial_id": list("abc"),
            "configuration": [0, 0, 0],
            "seed": [0, 1, 2],
            "psnr": [22.0, 23.0, 24.0],
            "best_psnr": [22.0, 23.0, 24.0],
            "stop_reason": ["completed"] * 3,
        }
    )
    lines = summary_lines(table, spec("frames: 6, seed: [0, 1, 2]", "replicates: seed\n"), tmp_path)
    assert lines[-2].startswith("the configuration: psnr 23.000 over 3 seed replicates (22.000 to 24.000;"), lines
    assert not any(line.startswith(("best configuration", "next best")) for line in lines)
