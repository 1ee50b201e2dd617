"""What jsonschema's IRI format checker costs a sweep, as a ratio measured in one run.

nerfstudio's notebook tooling (jupyter-events) asks for `jsonschema[format-nongpl]`, which installs rfc3987-syntax;
jsonschema then compiles its 38 Earley grammars on every import, and every Ray process imports jsonschema (the
driver, the dashboard and runtime-env agents, the monitors, each trial's worker). `make install` uninstalls it. This
script runs the same short sweep through the command line with the checker importable and with it hidden (a module of
that name on PYTHONPATH that raises ImportError, which jsonschema skips, in every process Ray starts), alternately
for `--pairs` pairs, and prints each pair's ratio, the median and the range, and the seconds from launch to the
first trial's start. It needs rfc3987-syntax installed for the comparison (`pip install rfc3987-syntax`; `make
install` removes it again). Usage:

    python benchmarks/launch.py [--steps 30] [--pairs 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweep_start import spec_text
from timing import interleaved, ratios, summary

from nerftune.data.synthetic import SceneOptions, write_scene

ROOT = Path(__file__).resolve().parents[1]
CHECKER = "rfc3987_syntax"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    if importlib.util.find_spec(CHECKER) is None:
        raise SystemExit(f"{CHECKER} is not installed, so there is nothing to compare: pip install rfc3987-syntax")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scene = SceneOptions(frames=18, width=80, height=60)
        spec = folder / "start.yaml"
        spec.write_text(spec_text(write_scene(folder / scene.name(), scene), trials=2, steps=args.steps))
        hidden = folder / "hide"
        hidden.mkdir()
        (hidden / f"{CHECKER}.py").write_text('raise ImportError("hidden by benchmarks/launch.py")\n')
        first_start: dict[str, list[float]] = {"checker": [], "hidden": []}

        def sweep(kind: str) -> float:
            paths = [str(hidden)] if kind == "hidden" else []
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, str(ROOT), os.environ.get("PYTHONPATH", "")])}
            storage = folder / f"sweeps-{kind}-{len(first_start[kind])}"
            command = [sys.executable, "-m", "nerftune.sweep", str(spec), "--storage", str(storage)]
            start = time.perf_counter()
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
            started = None
            for line in process.stdout:
                if started is None and " started: " in line:
                    started = time.perf_counter() - start
            if process.wait() != 0 or started is None:
                raise SystemExit(f"the sweep with the checker {kind} failed")
            first_start[kind].append(started)
            return time.perf_counter() - start

        figures = interleaved({"checker": lambda: sweep("checker"), "hidden": lambda: sweep("hidden")}, args.pairs)
    print(f"\n2 trials of {args.steps} steps, 2 at a time, wall seconds of the whole command:")
    for kind, label in (("checker", "IRI checker importable"), ("hidden", "IRI checker hidden    ")):
        print(f"  {label}: {summary(figures[kind], 1)}; first trial started after {summary(first_start[kind], 1)}")
    print(f"  hidden / importable: {summary(ratios(figures['hidden'], figures['checker']))}")


if __name__ == "__main__":
    main()
