"""What a person sees while a sweep runs: one line per trial event, a progress bar of steps (where the output is a
terminal; in a log file, a line of steps done and time left at most every 10 minutes), the final table.

Everything else that the run prints (Ray's and nerfstudio's own output, the workers' logs, library warnings) goes
to `sweeps/<name>/sweep.log`; `--verbose` sends it to the terminal as before. Warnings that matter (LPIPS missing, a
failed trial) are said here once each.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import IO, Any

import pandas as pd
from ray.tune import Callback
from tqdm import tqdm

from nerftune.dimensions import total_steps
from nerftune.outcomes import LPIPS_MISSING, error_summary
from nerftune.quiet import terminal
from nerftune.results import RESULTS_FILE, best_row
from nerftune.scoring_progress import ScoringNotices, duration_text
from nerftune.spec import SweepSpec

LOG_FILE = "sweep.log"
LOOK_EVERY_S = 5.0  # how often the console reads how far running trials are in scoring their test sets
TABLE_ROWS = 30  # the final table's rows on the console (a study's 24 trials fit; a long search's best do)
PROGRESS_EVERY_S = 600.0  # without a terminal (a batch job's log), the steps done and time left at most this often


class LiveView(Callback):
    """Ray Tune callback: a line per trial event and a bar of steps trained, with elapsed time and time left.

    Ray pickles its run config, callbacks included, to restore a sweep: the view keeps only its settings in the
    pickle and finds the terminal again when the (restored) run starts.
    """

    def __init__(self, trials: int, max_steps: int, metric: str, dimensions: list[str]):
        self.trials, self.max_steps, self.metric, self.dimensions = trials, max_steps, metric, dimensions

    def setup(self, **info: Any) -> None:
        """Called by Ray Tune when the run (new or restored) starts."""
        self.terminal = terminal()
        self.clock = time.monotonic
        self.start = self.said_progress = self.clock()
        self.steps_at_start: int | None = None  # steps trained before this run (a resumed sweep's): not its pace
        self.warned: set[str] = set()
        self.last_step: dict[str, Any] = {}  # per trial: the step it last reported
        self.scoring, self.looked_at = ScoringNotices(), 0.0
        total = self.trials * self.max_steps
        out = self.terminal.out
        self.bar = tqdm(total=total, unit="step", desc="steps", file=out, disable=not _is_terminal(out))

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k in ("trials", "max_steps", "metric", "dimensions")}

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        """Called by Ray Tune many times a second: every few seconds, say which trials are long in scoring."""
        now = time.time()
        if now - self.looked_at < LOOK_EVERY_S:
            return
        self.looked_at = now
        running = {trial.trial_id: Path(trial.path) for trial in trials if trial.status == "RUNNING" and trial.path}
        for line in self.scoring.lines(running, now):
            self._say(line, trials)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        step = (trial.last_result or {}).get("step")
        if step:  # a replicate released at a rung, a retried or a resumed trial
            self._say(f"trial {trial.trial_id} continues from step {step}", trials)
            return
        values = " ".join(f"{name.rsplit('.', 1)[-1]}={trial.config.get(name)}" for name in self.dimensions)
        self._say(f"trial {trial.trial_id} started" + (f": {values}" if values else ""), trials)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if result.get("lpips") is None and "lpips" not in self.warned:
            self.warned.add("lpips")
            self._warn(LPIPS_MISSING)
        if result.get("compile_error") and "compile" not in self.warned:
            self.warned.add("compile")
            self._warn(
                f"trial {trial.trial_id} runs its hash grid as eager code (on the CPU, training about 1.8x and "
                f"scoring 4x slower than compiled): torch.compile failed ({result['compile_error']}); install a "
                "C++ compiler (g++, or set $CXX)"
            )
        if self.last_step.get(trial.trial_id) == result.get("step"):
            return  # a continuing trial reports the milestone it restored again: said already
        self.last_step[trial.trial_id] = result.get("step")
        self._say(f"trial {trial.trial_id} step {result.get('step')}: {self._score(result)}", trials)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        step, target = result.get("step", 0), result.get("target_steps", 0)
        if step < target:
            self._say(f"trial {trial.trial_id} stopped by the scheduler at step {step}: {self._score(result)}", trials)
        else:
            self._say(f"trial {trial.trial_id} finished at step {step}: {self._score(result)}", trials)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._warn(f"trial {trial.trial_id} failed: {error_summary(_error_text(trial))}")
        self._update(trials)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        step = (trial.last_result or {}).get("step", 0)
        self._warn(f"trial {trial.trial_id} failed after step {step}; retrying from its last checkpoint")
        self._update(trials)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._update(trials)
        self.bar.close()

    def _score(self, result: dict) -> str:
        value = result.get(self.metric)
        return (
            f"{self.metric} {value:.3f}" if isinstance(value, float) and math.isfinite(value) else f"no {self.metric}"
        )

    def _say(self, line: str, trials: list) -> None:
        self._write(line)
        self._update(trials)

    def _write(self, line: str) -> None:
        elapsed = time.strftime("%H:%M:%S", time.gmtime(self.clock() - self.start))
        self.bar.write(f"[{elapsed}] {line}", file=self.terminal.out)

    def _warn(self, line: str) -> None:
        self.bar.clear()  # the bar's line on the terminal, so that the warning does not run into it
        self.terminal.warn(line)
        self.bar.refresh()

    def _update(self, trials: list) -> None:
        """Steps done over steps still expected: an ended trial expects no more, one not yet started its maximum."""
        done = expected = trials_ended = 0
        for trial in trials:
            step = (trial.last_result or {}).get("step", 0)
            done += step
            ended = trial.status in ("TERMINATED", "ERROR")
            trials_ended += ended
            expected += step if ended else (total_steps(trial.config) if "steps" in trial.config else self.max_steps)
        expected += max(self.trials - len(trials), 0) * self.max_steps
        self.bar.total, self.bar.n = max(expected, done), done
        self.bar.refresh()
        if self.bar.disable:  # no bar to show it: a line now and then
            self._progress_line(done, max(expected, done), trials_ended)

    def _progress_line(self, done: int, expected: int, ended: int) -> None:
        """Steps done of those still possible (ASHA's stops make fewer), and the time left at this run's pace."""
        if self.steps_at_start is None:
            self.steps_at_start = done
        now = self.clock()
        trained = done - self.steps_at_start
        if now - self.said_progress < PROGRESS_EVERY_S or trained <= 0 or done >= expected:
            return
        self.said_progress = now
        pace = trained / (now - self.start)
        self._write(
            f"progress: {done:,} of up to {expected:,} steps ({100 * done / expected:.0f} %), {ended} of "
            f"{self.trials} trials ended; up to about {duration_text((expected - done) / pace)} left at this run's "
            f"pace so far ({pace:.1f} steps/s)"
        )


def summary_lines(table: pd.DataFrame, spec: SweepSpec, folder: Path) -> list[str]:
    """The final table, the best trial, the best configuration over its replicates and where the results are."""
    dimensions, metric = list(spec.searched), spec.metric.name
    columns = ["trial_id", *dimensions, f"best_{metric}", "steps_done", "stop_reason", "steps_per_s"]
    shown = table.head(TABLE_ROWS)  # results.csv's order: the best first, then stopped and failed trials
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        lines = shown[[c for c in columns if c in shown]].to_string(index=False).splitlines()
    if len(table) > len(shown):
        rest = table.stop_reason.iloc[len(shown):].map(lambda reason: reason.split(":")[0]).value_counts()
        counts = ", ".join(f"{count} {reason}" for reason, count in rest.items())
        lines.append(f"... and {len(table) - len(shown)} more trials ({counts}): every one in {RESULTS_FILE}")
    best = best_row(table, metric)
    if best:
        values = ", ".join(f"{k}={best[k]}" for k in dimensions)
        searched = f" ({values})" if values else ""  # nothing searched: no empty brackets
        lines.append(f"best trial {best['trial_id']}: {metric} {best[f'best_{metric}']:.3f}{searched}")
    from nerftune.report.answers import study_lines  # scipy: only where a sweep ends

    return lines + study_lines(table, spec) + [f"results: {folder / RESULTS_FILE}"]


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _error_text(trial: Any) -> str | None:
    """The trial's error as Tune wrote it for this failure: in the driver's copy of the trial folder, which
    `get_error` reads only once it has reached the storage folder (later, for a trial whose process died)."""
    local = trial.error_file
    if local and os.path.isfile(local):
        return Path(local).read_text()
    error = trial.get_error()
    return str(error) if error else None
