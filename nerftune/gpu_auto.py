"""`resources: {gpu: auto}` at launch: measure how many trials share a GPU for a prepared sweep (`packing.py` decides
from the measurement), saying each measured point as it comes."""

from __future__ import annotations

from typing import Any, Callable

from nerftune import packing
from nerftune.packing import Packing
from nerftune.preflight import Prepared
from nerftune.spec import SCENE


def measure_packing(prepared: Prepared, say: Callable[[str], None]) -> Packing:
    """`resources.gpu: auto`: train the heaviest configuration of each method alone and packed, choose how many
    trials share a GPU (the fewest any method allows), and keep the measurement in the sweep folder."""
    spec = prepared.spec
    candidates = {
        name: dim.choices or [int(dim.max) if dim.type == "int" else dim.max] for name, dim in spec.space.items()
    }
    say("measuring how many trials share a GPU (resources.gpu: auto)")
    gpu_memory = prepared.gpus[0].memory_mb
    choices = []
    scene = prepared.largest_scene
    for configuration in packing.heaviest_configurations({**candidates, SCENE: [scene.name]}):
        job = packing.ProbeJob(
            str(scene.data_dir),
            scene.test_every,
            spec.profile,
            spec.fast_path,
            configuration,
            cpus=spec.resources.cpu,
        )
        say(f"  {configuration['method']}, heaviest configuration: {configuration}")
        measurements = packing.measure(job, on_result=lambda m: say(f"    {measured_line(m, prepared.mps)}"))
        choices.append((packing.choose(measurements, gpu_memory), measurements, configuration))
    trials_per_gpu, measurements, configuration = min(choices, key=lambda choice: choice[0])
    chosen = packing.Packing(
        prepared.packing_key, gpu_memory, measurements, trials_per_gpu, configuration, packing.now(), prepared.mps
    )
    packing.write_packing(prepared.experiment_dir, chosen)
    say(f"packing: {chosen.describe()}")
    return chosen


def measured_line(measurement: Any, mps: bool) -> str:
    if measurement.error:
        return f"{measurement.copies} at once: failed ({measurement.error})"
    each = ", ".join(f"{rate:.1f}" for rate in measurement.steps_per_s)
    busy = f" ({packing.ceiling(measurement.gpu_busy, mps)})" if measurement.gpu_busy else ""
    return (
        f"{measurement.copies} at once: {measurement.aggregate:.1f} steps/s in all ({each}), "
        f"{measurement.per_trial_mb:.0f} MB each{busy}"
    )
