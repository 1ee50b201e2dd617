"""How fast the commands answer before anything is launched: --help, bad input and --dry-run, in fresh processes.

The issue's floor is 3 seconds on 2 cores for each (except reading the data). Runs every case `--repeats` times,
interleaved, on a demo-like spec whose synthetic scene is rendered once beforehand, and prints the median and range
of each. Usage:

    python benchmarks/cli.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from timing import command_seconds, interleaved, summary

ROOT = Path(__file__).resolve().parents[1]
SPEC = """\
name: cli
data: {{path: synthetic:id-card, scene: {{frames: 48, width: 160, height: 120}}}}
profile: tiny
space: {{frames: {{values: [6, 12, 24, 42]}}, seed: {{values: [0, 1]}}, method: {method}, steps: 800}}
"""


def seconds(*args: str, expect: int) -> float:
    return command_seconds([sys.executable, "-m", "nerftune", *args], ROOT, expect)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        good, bad = folder / "good.yaml", folder / "bad.yaml"
        good.write_text(SPEC.format(method="nerfacto"))
        bad.write_text(SPEC.format(method="nerfacto2"))
        storage = str(folder / "sweeps")
        seconds("sweep", str(good), "--dry-run", "--storage", storage, expect=0)  # renders the scene, caches methods
        cases = {
            "sweep --help": lambda: seconds("sweep", "--help", expect=0),
            "sweep, unknown method": lambda: seconds("sweep", str(bad), "--storage", storage, expect=2),
            "sweep --dry-run": lambda: seconds("sweep", str(good), "--dry-run", "--storage", storage, expect=0),
            "prepare, missing input": lambda: seconds("prepare", str(folder / "no.mp4"), "--out", tmp, expect=2),
            "paths, missing data": lambda: seconds("paths", str(folder / "nothing"), expect=2),
            "render, not a trial": lambda: seconds("render", tmp, "--paths", str(good), expect=2),
            "eval, not a sweep": lambda: seconds("eval", tmp, expect=2),
        }
        figures = interleaved(cases, args.repeats)
    print(f"\nseconds to answer, fresh process each ({args.repeats} interleaved rounds; target < 3 s)")
    for name, values in figures.items():
        print(f"{name:<24} {summary(values, 2)}")


if __name__ == "__main__":
    main()
