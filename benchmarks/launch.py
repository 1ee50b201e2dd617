"""What an import nobody uses costs a sweep's launch, as a ratio measured in one run. Two such imports:

- `--compare iri` (the default): jsonschema's IRI format checker. nerfstudio's notebook tooling (jupyter-events)
  asks for `jsonschema[format-nongpl]`, which installs rfc3987-syntax; jsonschema then compiles its 38 Earley
  grammars on every import, and every Ray process imports jsonschema (the driver, the dashboard and runtime-env
  agents, the monitors, each trial's worker). `make install` uninstalls it. Compared: the checker importable, and
  hidden (a module of that name on PYTHONPATH that raises ImportError, which jsonschema skips, in every process Ray
  starts). It needs rfc3987-syntax installed (`pip install rfc3987-syntax`; `make install` removes it again).
- `--compare wandb`: Tune's usage telemetry imports wandb (installed with nerfstudio) into the driver to count a
  run's callbacks; nerftune's driver keeps it out for the run (`tuner.without_wandb`). Compared: the command as it
  is, and the command with that context made a no-op (wandb imported, as before).

The same short sweep runs through the command line each way, alternately for `--pairs` pairs; the script prints each
pair's ratio, the median and the range, and the seconds from launch to the first trial's start. Usage:

    python benchmarks/launch.py [--compare iri|wandb] [--steps 30] [--pairs 3]
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
# the sweep's command line with the driver's wandb guard made a no-op: the launch as it was before the guard
WANDB_IMPORTED = (
    "import contextlib, sys; import nerftune.tuner as tuner; tuner.without_wandb = contextlib.nullcontext; "
    "from nerftune.sweep import main; sys.exit(main(sys.argv[1:]))"
)


def variants(compare: str, folder: Path) -> dict[str, tuple[str, list[str], list[str]]]:
    """Label -> (description, the command's interpreter arguments, extra PYTHONPATH entries); the slower first."""
    if compare == "wandb":
        return {
            "imported": ("wandb imported by Tune", ["-c", WANDB_IMPORTED], []),
            "left out": ("wandb left out", ["-m", "nerftune.sweep"], []),
        }
    if importlib.util.find_spec(CHECKER) is None:
        raise SystemExit(f"{CHECKER} is not installed, so there is nothing to compare: pip install rfc3987-syntax")
    hidden = folder / "hide"
    hidden.mkdir()
    (hidden / f"{CHECKER}.py").write_text('raise ImportError("hidden by benchmarks/launch.py")\n')
    return {
        "importable": ("IRI checker importable", ["-m", "nerftune.sweep"], []),
        "hidden": ("IRI checker hidden", ["-m", "nerftune.sweep"], [str(hidden)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=["iri", "wandb"], default="iri")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scene = SceneOptions(frames=18, width=80, height=60)
        spec = folder / "start.yaml"
        spec.write_text(spec_text(write_scene(folder / scene.name(), scene), trials=2, steps=args.steps))
        ways = variants(args.compare, folder)
        first_start: dict[str, list[float]] = {label: [] for label in ways}

        def sweep(label: str) -> float:
            _, interpreter_args, paths = ways[label]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, str(ROOT), os.environ.get("PYTHONPATH", "")])}
            storage = folder / f"sweeps-{label.replace(' ', '-')}-{len(first_start[label])}"
            command = [sys.executable, *interpreter_args, str(spec), "--storage", str(storage)]
            start = time.perf_counter()
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
            started = None
            for line in process.stdout:
                if started is None and " started: " in line:
                    started = time.perf_counter() - start
            if process.wait() != 0 or started is None:
                raise SystemExit(f"the sweep with {ways[label][0]} failed")
            first_start[label].append(started)
            return time.perf_counter() - start

        figures = interleaved({label: (lambda label=label: sweep(label)) for label in ways}, args.pairs)
    print(f"\n2 trials of {args.steps} steps, 2 at a time, wall seconds of the whole command:")
    for label, (description, _, _) in ways.items():
        started = summary(first_start[label], 1)
        print(f"  {description:<22}: {summary(figures[label], 1)}; first trial started after {started}")
    slower, faster = ways
    print(f"  {faster} / {slower}: {summary(ratios(figures[faster], figures[slower]))}")
    print(f"  first trial's start, {faster} / {slower}: {summary(ratios(first_start[faster], first_start[slower]))}")


if __name__ == "__main__":
    main()
