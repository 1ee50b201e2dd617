"""benchmarks/gpu_table.py: the README's GPU table made from a run's raw figures, and the README's own table agreeing
with the run it cites (`benchmarks/results/gpu-h100-2026-11-27.json`)."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu_table import table  # noqa: E402

H100_RUN = ROOT / "benchmarks" / "results" / "gpu-h100-2026-11-27.json"


def test_the_readmes_gpu_table_is_the_runs_figures():
    made = table(json.loads(H100_RUN.read_text()))
    readme = (ROOT / "README.md").read_text()
    for figures in [
        "| 10.4 | 1.00 | 2.8 GB |",  # bare nerfstudio
        "| 11.7 | 1.12 | 2.9 GB |",  # nerftune eager
        "| 30.6 | 2.94 | 1.8 GB |",  # the fast path
        "48.7 in all (12.6 to 13.0 each) | 4.66 |",  # the Ray sweep
        "33.2, 57.5, 76.3 in all |",  # packed, tiny
        "34.7, 40.8, 43.4 in all |",  # packed, small
        "0.6 GB each",
        "1.1 GB each",
    ]:
        assert figures in made, figures
        assert figures in readme, f"the README says otherwise than its run: {figures}"
    assert made.endswith("`search_spaces/frames.yaml` in full at 48.7 steps/s: 4.1 h")
    assert "would take at most 4.1 h at 48.7 steps/s" in " ".join(readme.split())  # (however the prose wraps)


def test_a_runs_waits_busy_time_failures_and_mps_curves_reach_the_table():
    results = {
        "gpu": "NVIDIA H200",
        "torch": "2.11.0+cu130",
        "profile": "default",
        "steps": 200,
        "bare": {"steps_per_s": 10.0, "peak_mb": 2048.0},
        "graphs32": {
            "steps_per_s": 45.0,
            "peak_mb": 1024.0,
            "compile_s": 120.4,
            "psnr": 19.04,
            "breakdown": {
                "syncs_per_step": 0.04,
                "gpu_busy": 0.9,
                "device_ms_per_step": 20.0,
                "step_ms": 22.2,
                "kernels_per_step": 312.0,
            },
        },
        "triton": {"error": "CompilationError: at 12:4"},
        "packing_mps_small": [
            {"copies": 1, "aggregate": 30.0, "each": [30.0], "peak_mb": [1100.0], "error": None, "gpu_busy": 0.8},
            {"copies": 2, "aggregate": 0.0, "each": [], "peak_mb": [], "error": "CUDA out of memory"},
        ],
    }
    rows = table(results).splitlines()
    assert rows[0] == "NVIDIA H200, torch 2.11.0+cu130"
    graphs = next(row for row in rows if row.startswith("| (b5)"))
    busy = "90% (20.0 of 22.2 ms; 312 kernels) |"
    assert graphs.split(" | ")[1:] == ["45.0", "4.50", "1.0 GB", "120 s", "19.0 dB", "0.0", busy]
    failed = "| (b'') fast path, Triton hash grid | failed: CompilationError: at 12:4 |"
    assert any(row.startswith(failed) for row in rows)
    assert "| packed, small profile under MPS: 1, 2 copies at once | 30.0, failed in all |" in "\n".join(rows)
    assert rows[-1] == "`search_spaces/frames.yaml` in full at 45.0 steps/s: 4.4 h"
    # a run whose sweeps and probes named a kind of fast path says so above its table
    named = {**results, "fast_path": "cuda-graphs"}
    assert table(named).splitlines()[0] == (
        "NVIDIA H200, torch 2.11.0+cu130; sweeps and packing probes with `fast_path: cuda-graphs`"
    )
