"""The fast test tier on 2 pytest-xdist workers against one, as a ratio measured in one run.

`make test-fast` runs the tier's files on 2 workers (`-n 2 --dist loadfile`): its tests start subprocesses and
import libraries, and on 2 cores one of them sat idle about half the time. This runs the tier as the Makefile has it
and serially, alternately for `--pairs` pairs, and prints each run's wall seconds, each pair's ratio and their
median and range. Every run must pass. Usage (from the repository root):

    python benchmarks/suite_tiers.py [--pairs 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from timing import command_seconds, interleaved, ratios, summary

ROOT = Path(__file__).resolve().parents[1]
FAST_TIER = ["-m", "not slow", "-q", "-p", "no:cacheprovider"]
WAYS = {"one worker": [], "2 workers": ["-n", "2", "--dist", "loadfile"]}  # the second as `make test-fast` runs it


def tier_seconds(extra: list[str]) -> float:
    return command_seconds([sys.executable, "-m", "pytest", *FAST_TIER, *extra], ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args()
    figures = interleaved({name: lambda extra=extra: tier_seconds(extra) for name, extra in WAYS.items()}, args.pairs)
    print(f"\nthe fast tier, wall seconds, {args.pairs} pairs:")
    for name in WAYS:
        print(f"  {name:10s}: {summary(figures[name], 1)}")
    print(f"  2 workers / one worker: {summary(ratios(figures['2 workers'], figures['one worker']))}")


if __name__ == "__main__":
    main()
