"""The README's GPU table from one run of `gpu.py`: every figure read from its results (`--out` JSON), none typed.

    python benchmarks/gpu_table.py gpu.json      # prints the table in Markdown, then the projection

`gpu.py` prints the same at the end of its run (`print_summary`), with each loop's costliest kernels and each
sweep's trials.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
import textwrap
from typing import Any

import pandas as pd

LABELS = {  # each part of gpu.py that trains one trial's loop: its row
    "bare": "(a) bare nerfstudio: its own `Trainer.train()`, same config",
    "eager": "(b) nerftune trial loop, eager (`fast_path: false`)",
    "fast": "(b') nerftune fast path (compiled hash grid, TF32)",
    "triton": "(b'') fast path, Triton hash grid",
    "fp32": "(b''') fast path in float32 (TF32 matmuls, no gradient scaler)",
    "graphs": "(b4) training step compiled whole, as CUDA graphs",
    "graphs32": "(b5) the same in float32",
    "model": "(b6) training step compiled whole, without CUDA graphs",
}
PACKING = [f"packing{mps}_{profile}" for mps in ("", "_mps") for profile in ("tiny", "small", "default")]
COLUMNS = ["steps/s", "x (a)", "peak GPU memory", "compiling", "test PSNR", "waits for the GPU a step", "GPU busy"]


def table(results: dict[str, Any]) -> str:
    """The run's figures as Markdown: a row per measured part, then the projected time of frames.yaml."""
    bare = _figure(results, "bare", "steps_per_s")
    lines = [
        f"| what (nerfacto, {results['profile']} profile, {results['steps']} steps) | {' | '.join(COLUMNS)} |",
        "| --- " * (len(COLUMNS) + 1) + "|",
    ]
    for part, label in LABELS.items():
        figures = results.get(part) or {}
        if "steps_per_s" in figures:
            lines.append(_row(label, figures, bare))
        elif "error" in figures:
            lines.append(f"| {label} | failed: {figures['error'][:200]} |" + " |" * (len(COLUMNS) - 1))
    for part, name in (("sweep", "(c) Ray sweep, 4 trials sharing the GPU"), ("auto", "`gpu: auto` sweep, small")):
        sweep = results.get(part) or {}
        if "aggregate_steps_per_s" in sweep:
            lines.append(_sweep_row(name, sweep, bare))
    for part in PACKING:
        rows = results.get(part)
        if isinstance(rows, list) and rows:
            lines.append(_packing_row(part, rows))
    fastest = max(
        [_figure(results, part, "steps_per_s") or 0 for part in LABELS if part != "bare"]
        + [_figure(results, "sweep", "aggregate_steps_per_s") or 0]
    )
    projection = (
        f"\n`search_spaces/frames.yaml` in full at {fastest:.1f} steps/s: {projected_hours(fastest):.1f} h"
        if fastest
        else ""
    )
    fast_path = results.get("fast_path", "auto")
    setting = f"; sweeps and packing probes with `fast_path: {fast_path}`" if fast_path != "auto" else ""
    return f"{results['gpu']}, torch {results['torch']}{setting}\n\n" + "\n".join(lines) + projection


def _row(label: str, figures: dict[str, Any], bare: float | None) -> str:
    breakdown = figures.get("breakdown") or {}
    cells = [
        f"{figures['steps_per_s']:.1f}",
        f"{figures['steps_per_s'] / bare:.2f}" if bare else "",
        f"{figures['peak_mb'] / 1024:.1f} GB" if figures.get("peak_mb") else "",
        f"{figures['compile_s']:.0f} s" if figures.get("compile_s") else "",
        f"{figures['psnr']:.1f} dB" if figures.get("psnr") is not None else "",
        f"{breakdown['syncs_per_step']:.1f}" if "syncs_per_step" in breakdown else "",
        _busy(breakdown),
    ]
    return f"| {label} | {' | '.join(cells)} |"


def _busy(breakdown: dict[str, Any]) -> str:
    if "gpu_busy" not in breakdown:
        return ""
    return (
        f"{breakdown['gpu_busy']:.0%} ({breakdown['device_ms_per_step']:.1f} of {breakdown['step_ms']:.1f} ms; "
        f"{breakdown['kernels_per_step']:.0f} kernels)"
    )


def _sweep_row(name: str, sweep: dict[str, Any], bare: float | None) -> str:
    aggregate = sweep["aggregate_steps_per_s"]
    rates = [trial["steps_per_s"] for trial in sweep["trials"]]
    memory = [mb for trial in sweep["trials"] if (mb := trial.get("peak_gpu_mb")) and not math.isnan(mb)]
    cells = [
        f"{aggregate:.1f} in all ({min(rates):.1f} to {max(rates):.1f} each)",
        f"{aggregate / bare:.2f}" if bare else "",
        f"{max(memory) / 1024:.1f} GB each" if memory and max(memory) else "",
        f"{min(t['compile_s'] for t in sweep['trials']):.0f} to {max(t['compile_s'] for t in sweep['trials']):.0f} s",
    ]
    return f"| {name} | {' | '.join(cells)} |" + " |" * (len(COLUMNS) - len(cells))


def _packing_row(part: str, rows: list[dict[str, Any]]) -> str:
    _, *mps, profile = part.split("_")
    name = f"packed, {profile} profile{' under MPS' if mps else ''}: " + ", ".join(str(r["copies"]) for r in rows)
    aggregates = ", ".join(f"{r['aggregate']:.1f}" if not r.get("error") else "failed" for r in rows) + " in all"
    memory = max((mb for r in rows for mb in r.get("peak_mb") or []), default=0)
    busy = next((f"{r['gpu_busy']:.0%} alone" for r in rows if r.get("gpu_busy") is not None), "")
    cells = [aggregates, "", f"{memory / 1024:.1f} GB each" if memory else "", "", "", "", busy]
    return f"| {name} copies at once | {' | '.join(cells)} |"


def _figure(results: dict[str, Any], part: str, name: str) -> float | None:
    value = (results.get(part) or {}).get(name)
    return float(value) if value else None


def projected_hours(steps_per_s: float) -> float:
    """search_spaces/frames.yaml trained in full (every trial to its last step: ASHA only shortens it)."""
    from nerftune.spec import load_spec

    spec = load_spec(Path(__file__).parent.parent / "search_spaces" / "frames.yaml")
    return spec.trial_count * spec.max_steps / steps_per_s / 3600


def print_summary(results: dict[str, Any]) -> None:
    """The README's table, each loop's costliest kernels, and each sweep's trials."""
    from step_breakdown import print_breakdown  # (it imports torch and nerfstudio: the table alone needs neither)

    print(f"\n{table(results)}\n")
    for part, label in LABELS.items():
        breakdown = (results.get(part) or {}).get("breakdown")
        if breakdown:
            print_breakdown(label, breakdown)
    for part in ("sweep", "auto"):
        sweep = results.get(part) or {}
        for key, chosen in (sweep.get("packing") or {}).items():
            print(f"  gpu: auto ({key}): {chosen['trials_per_gpu']} trial(s) per GPU chosen")
        if "trials" in sweep:
            print(f"  {part}: each trial's speed, memory and the device Ray gave it")
            print_trials(sweep["trials"])


def print_trials(trials: list[dict[str, Any]]) -> None:
    """Each trial of a sweep: its speed, memory, and the device Ray gave it."""
    columns = ["trial_id", "steps_per_s", "peak_gpu_mb", "device", "cuda_visible_devices", "gpu_name", "compile_s"]
    rows = pd.DataFrame(trials).reindex(columns=[*columns, "implementation", "psnr"])
    print(textwrap.indent(rows.to_string(index=False, float_format="{:.2f}".format), "    "))


if __name__ == "__main__":
    print(table(json.loads(Path(sys.argv[1]).read_text())))
