"""How many trials share a GPU (`resources: {gpu: auto}`), decided by measuring rather than guessing.

Before the sweep, the spec's heaviest configuration trains a few dozen steps alone, then as 2 and 4 copies at once
(separate processes, as Ray's trials are), each recording its steps/s and peak GPU memory. The sweep packs the
number of copies with the best aggregate steps/s that fits in the GPU's memory, and one trial per GPU unless packing
pays at least `MIN_GAIN`. The measurement is kept in the sweep folder, keyed by GPU model, method, profile, fast path,
image size and whether NVIDIA's MPS runs, so a resumed or repeated sweep reuses it. Nothing here imports torch: the
copies run `nerftune.nerf.probe` in subprocesses.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

PACKING_FILE = "packing.json"
COPIES = (1, 2, 4)
MIN_GAIN = 1.1  # packing must beat one trial per GPU by this factor: below it, the difference is measuring noise
MEMORY_HEADROOM = 0.9  # of the GPU's memory that packed trials may plan to use (fragmentation, other processes)
PROBE_STEPS = 40


@dataclass(frozen=True)
class Measurement:
    """`copies` trainings of one configuration at once on one GPU: each one's steps/s and peak memory (MB)."""

    copies: int
    steps_per_s: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    error: str | None = None  # a copy failed (out of memory, say): this many do not fit
    gpu_busy: float | None = None  # alone on the GPU: the fraction of its step time the GPU runs its work

    @property
    def aggregate(self) -> float:
        return sum(self.steps_per_s) if self.error is None else 0.0

    @property
    def per_trial_mb(self) -> float:
        return max(self.peak_mb, default=0.0)


@dataclass(frozen=True)
class Packing:
    """A measured packing curve and the choice made from it."""

    key: str
    gpu_memory_mb: float
    measurements: list[Measurement]
    trials_per_gpu: int
    configuration: dict[str, Any]  # what was measured: the heaviest configuration of the spec
    measured_at: str = ""
    mps: bool = False  # measured with NVIDIA's MPS running (part of the key too)

    @property
    def gain(self) -> float:
        """Aggregate steps/s of the chosen packing over one trial per GPU."""
        alone = _by_copies(self.measurements).get(1)
        chosen = _by_copies(self.measurements).get(self.trials_per_gpu)
        return chosen.aggregate / alone.aggregate if alone and chosen and alone.aggregate else 1.0

    def trial_speed(self) -> float:
        """One trial's steps/s as packed (the slowest copy of the chosen measurement)."""
        chosen = _by_copies(self.measurements).get(self.trials_per_gpu)
        return min(chosen.steps_per_s) if chosen and chosen.steps_per_s else 0.0

    def describe(self) -> str:
        curve = ", ".join(
            f"{m.copies}: {m.aggregate:.1f} steps/s, {m.per_trial_mb:.0f} MB each"
            if m.error is None
            else f"{m.copies}: failed ({m.error})"
            for m in self.measurements
        )
        alone = _by_copies(self.measurements).get(1)
        busy = f"; {ceiling(alone.gpu_busy, self.mps)}" if alone and alone.gpu_busy else ""
        return (
            f"{self.trials_per_gpu} trial(s) per GPU, {self.gain:.2f}x the aggregate steps/s of one "
            f"(measured {self.measured_at} on {self.key}: {curve}{busy})"
        )


def ceiling(gpu_busy: float, mps: bool = False) -> str:
    """What one trial's GPU occupancy leaves to packing: without NVIDIA's MPS, copies take turns on a GPU (kernels of
    different processes never run at once), so they can fill only the time it stands idle; under MPS small kernels
    of several copies can share the GPU's multiprocessors, beyond that bound."""
    busy = f"one trial alone keeps the GPU busy {gpu_busy:.0%} of its step time"
    if mps:
        return f"{busy}; NVIDIA's MPS runs here, so packed trials' kernels can run at once"
    return (
        f"{busy}, so trials taking turns on it can give at most {1 / gpu_busy:.2f}x "
        "(NVIDIA's MPS, `nvidia-cuda-mps-control -d`, lets their kernels run at once)"
    )


def busy_fraction(spans_us: Sequence[tuple[float, float]], wall_s: float) -> float:
    """The fraction of `wall_s` covered by the device's work (start and end in microseconds; spans on several
    streams may overlap and count once), at most 1."""
    covered, reached = 0.0, -math.inf
    for start, end in sorted(spans_us):
        if end > reached:
            covered += end - max(start, reached)
            reached = end
    return min(1.0, covered / 1e6 / wall_s) if wall_s > 0 else 0.0


def choose(measurements: Sequence[Measurement], gpu_memory_mb: float) -> int:
    """The number of trials per GPU: the best aggregate steps/s among packings that ran and fit in memory, if it
    beats one trial per GPU by `MIN_GAIN`; else 1 (never worse than one trial per GPU)."""
    by_copies = _by_copies(measurements)
    alone = by_copies.get(1)
    if alone is None or alone.error is not None or alone.aggregate <= 0:
        return 1
    fitting = [
        m
        for m in measurements
        if m.error is None
        and len(m.steps_per_s) == m.copies
        and fits(m.copies, max(m.per_trial_mb, alone.per_trial_mb), gpu_memory_mb)
    ]
    best = max(fitting, key=lambda m: (m.aggregate, -m.copies), default=alone)
    return best.copies if best.aggregate >= MIN_GAIN * alone.aggregate else 1


def fits(copies: int, per_trial_mb: float, gpu_memory_mb: float) -> bool:
    return copies * per_trial_mb <= MEMORY_HEADROOM * gpu_memory_mb


def max_copies(per_trial_mb: float, gpu_memory_mb: float) -> int:
    return int(MEMORY_HEADROOM * gpu_memory_mb // per_trial_mb) if per_trial_mb > 0 else sys.maxsize


def packing_key(
    gpu_name: str, method: str, profile: str, fast_path: Any, image_size: tuple[int, int], mps: bool = False
) -> str:
    key = f"{gpu_name} | {method} | profile {profile} | fast_path {fast_path} | {image_size[0]}x{image_size[1]}"
    return f"{key} | MPS" if mps else key  # (without MPS, the key measurements were kept under before it counted)


def heaviest_configurations(candidates: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """One configuration per method, every other dimension at its most demanding candidate value: the largest
    number, the list of numbers with the largest sum, otherwise the first value."""
    base = {}
    for name, values in candidates.items():
        weighed = all(_weight(v) is not None for v in values)
        base[name] = max(values, key=_weight) if weighed else values[0]
    return [{**base, "method": method} for method in candidates["method"]]


def _weight(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return float(sum(value))
    return None


def read_packing(folder: Path, key: str) -> Packing | None:
    entry = _read_all(folder).get(key)
    if entry is None:
        return None
    entry["measurements"] = [Measurement(**m) for m in entry["measurements"]]
    return Packing(**entry)


def write_packing(folder: Path, packing: Packing) -> None:
    entries = _read_all(folder)
    entries[packing.key] = asdict(packing)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PACKING_FILE).write_text(json.dumps(entries, indent=2))


def _read_all(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / PACKING_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _by_copies(measurements: Sequence[Measurement]) -> dict[int, Measurement]:
    return {m.copies: m for m in measurements}


@dataclass(frozen=True)
class ProbeJob:
    """What each copy trains: a configuration of a sweep's data, as `nerftune.nerf.probe` takes it."""

    data_dir: str
    test_every: int
    profile: str
    fast_path: Any
    configuration: dict[str, Any]
    steps: int = PROBE_STEPS
    cpus: float = 1.0  # each trial's `resources.cpu`: a copy uses as many CPU threads as Ray lets a trial use


def measure(
    job: ProbeJob, copies: Sequence[int] = COPIES, on_result: Callable[[Measurement], None] | None = None
) -> list[Measurement]:
    """Train `job` as 1, 2 and 4 concurrent processes in turn; stops at the first count that fails."""
    results = []
    for count in copies:
        result = _run_copies(job, count)
        results.append(result)
        if on_result:
            on_result(result)
        if result.error:
            break
    return results


def _run_copies(job: ProbeJob, count: int) -> Measurement:
    with tempfile.TemporaryDirectory(prefix="nerftune-probe-") as tmp:
        job_file = Path(tmp) / "job.json"
        job_file.write_text(json.dumps(asdict(job)))
        command = [sys.executable, "-m", "nerftune.nerf.probe", str(job_file), "--copies", str(count)]
        processes = [
            subprocess.Popen(
                [*command, "--barrier", str(Path(tmp) / "barrier"), "--out", str(Path(tmp) / f"copy{i}.json")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(count)
        ]
        errors = [_last_line(p.communicate()[1]) for p in processes if p.wait() != 0]
        if errors:
            return Measurement(count, error=errors[0])
        copies = [json.loads((Path(tmp) / f"copy{i}.json").read_text()) for i in range(count)]
    busy = copies[0].get("gpu_busy") if count == 1 else None
    return Measurement(count, [c["steps_per_s"] for c in copies], [c["peak_mb"] for c in copies], gpu_busy=busy)


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "the probe stopped without a message"


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M")
