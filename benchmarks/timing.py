"""Interleaved measurement for the benchmarks: this machine's speed drifts by up to 2x, so two things compared are
measured alternately (a, b, a, b, ...) and each pair gives one ratio; the median and range of those ratios is the
figure, never one run of each."""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable


def interleaved(candidates: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Call each candidate in turn, `repeats` rounds; each returns its figure (seconds, steps/s, ...)."""
    figures: dict[str, list[float]] = {name: [] for name in candidates}
    for round_ in range(repeats):
        for name, measure in candidates.items():
            figures[name].append(measure())
            print(f"  round {round_ + 1}/{repeats}: {name} = {figures[name][-1]:.3f}", flush=True)
    return figures


def ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    return [a / b for a, b in zip(numerators, denominators)]


def summary(values: list[float], digits: int = 3) -> str:
    """`median (min to max, n = N)`."""
    low, high = min(values), max(values)
    return f"{statistics.median(values):.{digits}f} ({low:.{digits}f} to {high:.{digits}f}, n = {len(values)})"


def command_seconds(command: list[str], cwd: Path, expect: int = 0) -> float:
    """The wall seconds of running `command`; stops the benchmark, with its output, if it exits otherwise than
    `expect`."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != expect:
        raise SystemExit(f"{' '.join(command)} exited {result.returncode}, not {expect}:\n{result.stdout[-2000:]}"
                         f"{result.stderr[-2000:]}")
    return elapsed
