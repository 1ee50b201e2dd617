"""Asynchronous successive halving over configurations, not trials: the decisions of nerftune's scheduler.

A configuration runs once per replicate value (seeds, typically). At each rung it is judged on the mean over its
replicates, once every replicate still alive has reached that rung; until then the replicates that got there wait.
The mean is compared, as ASHA does (Li et al. 2020; Ray Tune's `AsyncHyperBandScheduler`), with the means recorded
earlier at the same rung, but only those of its own stratum (the same frame count, say): a configuration below the
(1 - 1/reduction_factor) quantile stops, every replicate together. The first configuration of a stratum at a rung
always continues, so every stratum keeps one to the last step.

The book is plain data (JSON), with no Ray: the scheduler writes it after every change, and a resumed sweep reads
it back, so decisions made before an interruption stand.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

CONTINUE, WAIT, STOP = "continue", "wait", "stop"


def stratum_of(values: dict, stratify: list[str]) -> str:
    """The key of a configuration's stratum: its values of the stratified dimensions, as JSON."""
    return json.dumps([values.get(name) for name in stratify], default=lambda value: value.item())  # numpy scalars


@dataclass
class RungBook:
    rungs: list[int]
    replicates: int  # trials per configuration
    reduction_factor: float
    mode: str  # "max" or "min"
    # configuration -> rung -> trial -> the metric it reported there
    values: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # configuration -> rung -> CONTINUE or STOP
    decisions: dict[str, dict[str, str]] = field(default_factory=dict)
    # stratum -> rung -> configuration -> its replicate mean there
    means: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    strata: dict[str, str] = field(default_factory=dict)  # configuration -> stratum
    lost: dict[str, list[str]] = field(default_factory=dict)  # configuration -> trials that errored

    def record(self, config: str, stratum: str, trial: str, step: int, value: float | None) -> None:
        """A replicate's metric at `step`: it counts at the highest rung it has reached and not yet reported."""
        self.strata[config] = stratum
        passed = [r for r in self.rungs if r <= step and str(r) not in self.decisions.get(config, {})]
        if passed:
            at_rung = self.values.setdefault(config, {}).setdefault(str(passed[-1]), {})
            at_rung.setdefault(trial, math.nan if value is None else float(value))
        self._decide_complete_rungs(config)

    def lose(self, config: str, trial: str) -> None:
        """A replicate errored: the configuration is judged on the others from now on."""
        lost = self.lost.setdefault(config, [])
        if trial not in lost:
            lost.append(trial)
        self._decide_complete_rungs(config)

    def verdict(self, config: str, step: int) -> str:
        """What a replicate at `step` does: STOP if any rung up to it stopped the configuration, WAIT while one is
        undecided, else CONTINUE."""
        decided = self.decisions.get(config, {})
        for rung in (r for r in self.rungs if r <= step):
            if decided.get(str(rung)) == STOP:
                return STOP
            if str(rung) not in decided:
                return WAIT
        return CONTINUE

    def _decide_complete_rungs(self, config: str) -> None:
        """Decide each rung, lowest first, at which every replicate still alive has reported."""
        lost = self.lost.get(config, [])
        decided = self.decisions.setdefault(config, {})
        for rung in map(str, self.rungs):
            if rung in decided:
                continue
            reported = {t: v for t, v in self.values.get(config, {}).get(rung, {}).items() if t not in lost}
            if not reported or len(reported) < self.replicates - len(lost):
                return
            decided[rung] = self._judge(config, rung, list(reported.values()))
            if decided[rung] == STOP:
                return

    def _judge(self, config: str, rung: str, values: list[float]) -> str:
        sign = 1.0 if self.mode == "max" else -1.0
        finite = [v for v in values if math.isfinite(v)]
        mean = sign * float(np.mean(finite)) if finite else -math.inf
        recorded = self.means.setdefault(self.strata[config], {}).setdefault(rung, {})
        earlier = [sign * v for v in recorded.values()]
        cutoff = float(np.nanpercentile(earlier, (1 - 1 / self.reduction_factor) * 100)) if earlier else None
        recorded[config] = sign * mean if finite else math.nan
        return STOP if cutoff is not None and mean < cutoff else CONTINUE

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=1))
        temporary.replace(path)  # a kill mid-write leaves the previous book

    @classmethod
    def load(cls, path: Path) -> "RungBook":
        return cls(**json.loads(path.read_text()))
