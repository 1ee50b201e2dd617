"""benchmarks/step_breakdown.py's sums, from kernel spans fed in (the GPU run profiles real ones)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

from step_breakdown import summarise  # noqa: E402


def test_breakdown_sums_kernels_by_name_per_step():
    # 2 steps in 1 ms unprofiled: kernel a twice (100 us each), b once, overlapping a's first on another stream
    found = summarise([("a", 0, 100), ("b", 50, 150), ("a", 200, 300)], steps=2, unprofiled_s=0.001)
    assert found["gpu_busy"] == 0.25  # 0 to 150 and 200 to 300 covered, overlaps once
    assert found["step_ms"] == 0.5 and found["kernels_per_step"] == 1.5
    assert abs(found["device_ms_per_step"] - 0.15) < 1e-12
    assert [row["kernel"] for row in found["top"]] == ["a", "b"]
    assert found["top"][0]["calls_per_step"] == 1.0 and abs(found["top"][0]["ms_per_step"] - 0.1) < 1e-12
