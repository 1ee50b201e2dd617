"""What nerftune saves each process that loads nerfstudio's method registry, as a ratio measured in one run.

nerfstudio's registry makes a stand-in for each method it lists but does not ship, and each stand-in searches the
whole call stack (`inspect.stack()`) as it is made; `nerftune.nerf.methods.registry()` tells them the import made
them. Every process that builds a trial's config loads the registry: the sweep command (for the renders), each
trial's Ray worker, `nerftune render` and `eval`. This script loads it in fresh processes, directly and through
nerftune, alternately for `--pairs` pairs; each process imports torch and nerfstudio's trainer first (untimed, as a
worker has by then), and times the registry alone. Prints each pair's ratio nerftune / direct, the median and the
range. Usage:

    python benchmarks/registry.py [--pairs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from timing import interleaved, ratios, summary

ROOT = Path(__file__).resolve().parents[1]
LOAD = {
    "direct": "from nerfstudio.configs.method_configs import all_methods",
    "nerftune": "from nerftune.nerf.methods import registry; all_methods = registry()",
}
PROBE = """
import time
import torch, nerfstudio.engine.trainer
start = time.perf_counter()
{load}
assert "nerfacto" in all_methods
print(time.perf_counter() - start)
"""


def load_seconds(kind: str) -> float:
    probe = PROBE.format(load=LOAD[kind])
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    seconds = interleaved({kind: lambda kind=kind: load_seconds(kind) for kind in LOAD}, args.pairs)
    print(f"registry load, direct:   {summary(seconds['direct'], 2)} s")
    print(f"registry load, nerftune: {summary(seconds['nerftune'], 2)} s")
    per_pair = ratios(seconds["nerftune"], seconds["direct"])
    print(f"nerftune / direct, per pair: {', '.join(f'{r:.3f}' for r in per_pair)}")
    print(f"nerftune / direct: median {summary(per_pair)}")


if __name__ == "__main__":
    main()
