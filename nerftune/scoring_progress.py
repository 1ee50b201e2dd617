"""How far a trial is in scoring its test set, for the console: on a CPU a completed trial can render its test
images for many minutes with nothing else to report. The trial writes its count of images to a small file in its
folder (the sweep's storage, which a cluster shares with the driver); the console reads it and says so. Long work in
the command's own process (a render's views, `eval --reevaluate`'s test images) says so through `Notices`."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SCORING_FILE = "scoring.json"
WRITE_EVERY_S = 2.0  # the file is rewritten at most this often (an image can take a few milliseconds)
FIRST_NOTICE_S = 30.0  # scoring shorter than this is not worth a line
NOTICE_EVERY_S = 60.0  # then a line at most this often, and only when more images are done


class ScoringProgress:
    """The trial's side: call it with (images done, images in all) as each test image is scored, and `close()` it
    when scoring ends (the file is removed)."""

    def __init__(self, trial_dir: Path, step: int):
        self.path, self.step = trial_dir / SCORING_FILE, step
        self.started = time.time()  # wall-clock: the console may run on another machine of the cluster
        self.written_at = -WRITE_EVERY_S

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.written_at < WRITE_EVERY_S and done not in (0, total):
            return
        self.written_at = now
        state = {"step": self.step, "done": done, "total": total, "started": self.started,
                 "done_after_s": time.time() - self.started}
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(state))
        os.replace(partial, self.path)  # the console never reads half a file

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def clear_scoring(trial_dir: Path) -> None:
    """Remove what an attempt killed while scoring left behind, so that a retried trial does not show it."""
    (trial_dir / SCORING_FILE).unlink(missing_ok=True)


@dataclass(frozen=True)
class Scoring:
    step: int
    done: int
    total: int
    started: float  # when scoring began (seconds since the epoch)
    done_after_s: float  # seconds from then to the last image done

    def line(self, trial_id: str, now: float) -> str:
        elapsed = max(now - self.started, self.done_after_s)
        progress = how_far(self.done, self.total, self.done_after_s, elapsed)
        return f"trial {trial_id} scoring its test set at step {self.step}: {progress}"


def how_far(done: int, total: int, done_after_s: float, elapsed: float, unit: str = "images") -> str:
    """`4 of 15 images in 4 min, about 11 min left`: the time left from the mean time of those done so far
    (`done_after_s`: when the last of them was done), less the time since."""
    left = ""
    if 0 < done < total:
        seconds = max(done_after_s / done * (total - done) - (elapsed - done_after_s), 0.0)
        left = f", about {seconds / 60:.0f} min left" if seconds >= 90 else ", about a minute left"
    return f"{done} of {total} {unit} in {duration_text(elapsed)}{left}"


def duration_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 48 * 3600 else f"{seconds / 86400:.0f} days"


def read_scoring(trial_dir: Path) -> Scoring | None:
    try:
        state = json.loads((trial_dir / SCORING_FILE).read_text())
        fields = ("step", "done", "total", "started", "done_after_s")
        return Scoring(*(int(state[k]) for k in fields[:3]), *(float(state[k]) for k in fields[3:]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not scoring, or a file from elsewhere: nothing to say


class ScoringNotices:
    """The console's side: which running trials have been scoring long enough to say so, and when they last were."""

    def __init__(self) -> None:
        self.said: dict[str, tuple[float, int, int]] = {}  # trial id: (when, step, images done) at its last line

    def lines(self, running: dict[str, Path], now: float) -> list[str]:
        """`running`: each running trial's id and folder; `now`: seconds since the epoch."""
        lines = []
        for trial_id, folder in running.items():
            scoring = read_scoring(folder)
            if scoring is None or now - scoring.started < FIRST_NOTICE_S:
                continue
            when, *last = self.said.get(trial_id, (-NOTICE_EVERY_S, -1, -1))
            if now - when >= NOTICE_EVERY_S and [scoring.step, scoring.done] != last:
                self.said[trial_id] = (now, scoring.step, scoring.done)
                lines.append(scoring.line(trial_id, now))
        return lines


class Notices:
    """Long work in this process: call it with (done, total) as each item is done; it says `what: 4 of 15 images in
    2 min, about 5 min left` once the work has taken half a minute, then at most each minute (the line that ends
    the work says the rest)."""

    def __init__(self, say: Callable[[str], None], what: str, unit: str, clock: Callable[[], float] = time.monotonic):
        self.say, self.what, self.unit, self.clock = say, what, unit, clock
        self.started, self.said_at = clock(), -NOTICE_EVERY_S

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        elapsed = now - self.started
        if elapsed >= FIRST_NOTICE_S and now - self.said_at >= NOTICE_EVERY_S and 0 < done < total:
            self.said_at = now
            self.say(f"{self.what}: {how_far(done, total, elapsed, elapsed, self.unit)}")
