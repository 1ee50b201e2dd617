"""A trial long in scoring its test set says how far it is: the trial's progress file, and the console's lines."""

import io
import time
from types import SimpleNamespace

from nerftune.console import LiveView
from nerftune.quiet import Terminal
from nerftune.scoring_progress import (
    SCORING_FILE,
    ScoringNotices,
    ScoringProgress,
    clear_scoring,
    duration_text,
    read_scoring,
)


def test_the_trial_writes_its_count_of_images_and_removes_it_when_done(tmp_path):
    progress = ScoringProgress(tmp_path, step=40)
    progress(0, 5)
    assert read_scoring(tmp_path).done == 0 and read_scoring(tmp_path).total == 5
    progress(1, 5)  # within 2 s of the last write: not written again
    assert read_scoring(tmp_path).done == 0
    progress(5, 5)  # the last image always is
    scoring = read_scoring(tmp_path)
    assert (scoring.step, scoring.done, scoring.total) == (40, 5, 5)
    assert abs(scoring.started - time.time()) < 60
    progress.close()
    assert not (tmp_path / SCORING_FILE).exists() and read_scoring(tmp_path) is None
    (tmp_path / SCORING_FILE).write_text("{half a fi")
    assert read_scoring(tmp_path) is None, "a file it cannot read says nothing"
    clear_scoring(tmp_path)
    assert not (tmp_path / SCORING_FILE).exists()


def write_progress(folder, started, done, total, done_after_s, step=40):
    folder.mkdir(exist_ok=True)
    (folder / SCORING_FILE).write_text(
        f'{{"step": {step}, "done": {done}, "total": {total}, "started": {started}, "done_after_s": {done_after_s}}}'
    )


def test_notices_start_after_half_a_minute_then_come_each_minute_with_news(tmp_path):
    notices, now = ScoringNotices(), 10_000.0
    folder = tmp_path / "trial_a"
    write_progress(folder, started=now - 10, done=0, total=8, done_after_s=0)
    assert notices.lines({"a": folder}, now) == [], "10 s of scoring is not worth a line"
    write_progress(folder, started=now - 35, done=0, total=8, done_after_s=0)
    assert notices.lines({"a": folder}, now) == ["trial a scoring its test set at step 40: 0 of 8 images in 35 s"]
    write_progress(folder, started=now - 35, done=2, total=8, done_after_s=30)
    assert notices.lines({"a": folder}, now + 30) == [], "a line a minute at most"
    # 2 images in 120 s: 60 s each, 6 to go, 20 s into the third
    write_progress(folder, started=now - 70, done=2, total=8, done_after_s=120)
    (line,) = notices.lines({"a": folder}, now + 70)
    assert line == "trial a scoring its test set at step 40: 2 of 8 images in 2 min, about 6 min left"
    assert notices.lines({"a": folder}, now + 200) == [], "nothing new: no line"
    write_progress(folder, started=now + 150, done=2, total=8, done_after_s=120, step=80)
    assert len(notices.lines({"a": folder}, now + 200)) == 1, "the next milestone's scoring, at the same count"
    assert notices.lines({"b": tmp_path / "trial_b"}, now) == [], "a trial that is not scoring"


def test_the_console_reads_running_trials_only(tmp_path):
    view = LiveView(trials=2, max_steps=100, metric="psnr", dimensions=[])
    out = io.StringIO()
    view.setup()
    view.terminal = Terminal(out, io.StringIO())
    started = time.time() - 45
    for name in ("running", "ended"):
        write_progress(tmp_path / name, started=started, done=1, total=3, done_after_s=30)
    trials = [
        SimpleNamespace(trial_id=name, status=status, path=str(tmp_path / name), last_result={}, config={})
        for name, status in (("running", "RUNNING"), ("ended", "TERMINATED"))
    ]
    view.on_step_end(1, trials)
    assert "trial running scoring its test set at step 40: 1 of 3 images in 45 s, about a minute left" in out.getvalue()
    assert "trial ended" not in out.getvalue()
    view.on_step_end(2, trials)
    assert out.getvalue().count("scoring") == 1, "read every few seconds, not at each of Tune's steps"


def test_long_work_in_this_process_says_how_far_after_half_a_minute_then_each_minute():
    from nerftune.scoring_progress import Notices

    now, said = [1000.0], []
    notices = Notices(said.append, "rendering trial 3f2a1c0d", "views", clock=lambda: now[0])

    def done(count: int, at: float) -> None:
        now[0] = 1000.0 + at
        notices(count, 40)

    done(0, 0)
    done(1, 10)
    done(2, 25)
    assert said == [], "nothing in the first half minute"
    done(3, 30)
    assert said == ["rendering trial 3f2a1c0d: 3 of 40 views in 30 s, about 6 min left"]
    done(4, 60)
    assert len(said) == 1, "then at most a line a minute"
    done(9, 90)
    assert said[-1] == "rendering trial 3f2a1c0d: 9 of 40 views in 2 min, about 5 min left"
    done(40, 500)
    assert len(said) == 2, "the line that ends the work says the rest"


def test_durations_read_in_the_unit_a_person_would_say():
    said = [duration_text(s) for s in (45, 89, 90, 89 * 60, 90 * 60, 47.9 * 3600, 48 * 3600, 17.6 * 86400)]
    assert said == ["45 s", "89 s", "2 min", "89 min", "1.5 h", "47.9 h", "2 days", "18 days"]
