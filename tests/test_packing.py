"""`resources: {gpu: auto}`: the choice from a measured packing curve (numbers fed in, as measured on GPUs), the
kept measurement, and what the plan and the checks make of it on a machine with GPUs.

This machine has no GPU, so those tests put a stand-in `nvidia-smi` on PATH that lists four H100s: it is what
nerftune asks about GPUs before a sweep (nothing is trained in them). The probes themselves run for real, on the CPU
(the slow test at the end)."""

import os
import socket
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from nerftune import gpu_auto, sweep
from nerftune.machine import Gpu, cpu_count, mps_running, visible_gpus
from nerftune.packing import (
    Measurement,
    Packing,
    ProbeJob,
    busy_fraction,
    choose,
    heaviest_configurations,
    measure,
    read_packing,
    write_packing,
)
from nerftune.preflight import prepare

H100_MB = 81559.0


def curve(*points: tuple[list[float], float]) -> list[Measurement]:
    """Measurements of 1, 2, 4 copies: (each copy's steps/s, each copy's peak MB)."""
    return [Measurement(len(rates), rates, [mb] * len(rates)) for rates, mb in points]


def test_packing_that_pays_is_chosen():
    assert choose(curve(([20.0], 400), ([18.0, 18.0], 400), ([12.0] * 4, 400)), H100_MB) == 4
    assert choose(curve(([20.0], 400), ([18.0, 18.0], 400), ([8.0] * 4, 400)), H100_MB) == 2


def test_packing_that_does_not_pay_falls_back_to_one_trial_per_gpu():
    # nerfacto's defaults on an H200: 11.7 steps/s alone, 4 x 3.0 together (README of shared/gpu)
    assert choose(curve(([11.7], 10900), ([6.0, 6.0], 10900), ([3.0] * 4, 10900)), 143000) == 1
    # a gain within measuring noise is no gain
    assert choose(curve(([20.0], 400), ([10.8, 10.8], 400)), H100_MB) == 1


def test_packing_never_plans_beyond_the_gpus_memory():
    big = curve(([11.0], 30000), ([9.0, 9.0], 30000), ([7.0] * 4, 30000))
    assert choose(big, H100_MB) == 2  # 4 x 30 GB does not fit in 90 % of 80 GB, even though it ran
    assert choose(big, 40000) == 1


def test_a_failed_count_is_never_chosen_and_a_failed_single_means_one():
    failed_four = curve(([20.0], 400), ([15.0, 15.0], 400)) + [Measurement(4, error="CUDA out of memory")]
    assert choose(failed_four, H100_MB) == 2
    assert choose([Measurement(1, error="CUDA out of memory")], H100_MB) == 1


def test_the_heaviest_configuration_takes_the_most_demanding_values_per_method():
    candidates = {
        "frames": [6, 42, 18],
        "seed": [0],
        "steps": [3000],
        "method": ["nerfacto", "nerfacto-big"],
        "pipeline.model.num_proposal_samples_per_ray": [[64, 32], [256, 96], [128, 64]],
        "pipeline.model.background_color": ["random", "white"],
    }
    configurations = heaviest_configurations(candidates)
    assert [c["method"] for c in configurations] == ["nerfacto", "nerfacto-big"]
    assert configurations[0] | {"method": None} == {
        "frames": 42,
        "seed": 0,
        "steps": 3000,
        "method": None,
        "pipeline.model.num_proposal_samples_per_ray": [256, 96],
        "pipeline.model.background_color": "random",
    }


def test_the_measurement_is_kept_per_key(tmp_path):
    packing = Packing("H100 | nerfacto | tiny", H100_MB, curve(([20.0], 400), ([18.0, 18.0], 400)), 2, {"frames": 6})
    write_packing(tmp_path, packing)
    write_packing(tmp_path, Packing("H100 | nerfacto | default", H100_MB, curve(([11.0], 9000)), 1, {}))
    assert read_packing(tmp_path, "H100 | nerfacto | tiny") == packing
    assert read_packing(tmp_path, "H100 | nerfacto | default").trials_per_gpu == 1
    assert read_packing(tmp_path, "A100 | nerfacto | tiny") is None
    assert packing.gain == pytest.approx(36.0 / 20.0)


def test_the_gpus_busy_time_counts_overlapping_work_once():
    # kernels on two streams overlap from 300 to 400 us: 200 + 250 + 100 = 550 us of 1 ms busy
    assert busy_fraction([(0.0, 200.0), (300.0, 500.0), (250.0, 400.0), (800.0, 900.0)], 0.001) == pytest.approx(0.55)
    assert busy_fraction([(0.0, 100.0), (10.0, 50.0)], 0.001) == pytest.approx(0.1), "a span inside another"
    assert busy_fraction([(0.0, 3000.0)], 0.001) == 1.0, "never above 1 (a profiled step outlasting an unprofiled)"
    assert busy_fraction([], 0.001) == 0.0


def test_the_packing_says_what_one_trials_gpu_occupancy_leaves_to_packing(tmp_path):
    # the small profile on an H100 (README): alone 34.7 steps/s, 4 copies 43.4 in all
    alone = Measurement(1, [34.7], [1162.0], gpu_busy=0.8)
    packing = Packing("H100 | nerfacto | small", H100_MB, [alone, *curve(([10.85] * 4, 1164))], 4, {})
    busy = "one trial alone keeps the GPU busy 80% of its step time"
    bound = f"{busy}, so trials taking turns on it can give at most 1.25x"
    hint = "(NVIDIA's MPS, `nvidia-cuda-mps-control -d`, lets their kernels run at once)"
    assert f"{bound} {hint})" in packing.describe()
    write_packing(tmp_path, packing)
    assert read_packing(tmp_path, packing.key).measurements[0].gpu_busy == 0.8
    assert gpu_auto.measured_line(alone, mps=False).endswith(f"1162 MB each ({bound} {hint})"), "as it is printed"
    under_mps = gpu_auto.measured_line(alone, mps=True)
    assert under_mps.endswith(f"{busy}; NVIDIA's MPS runs here, so packed trials' kernels can run at once)")
    assert "at most" not in under_mps, "under MPS the kernels of several copies can run at once: no such bound"
    unmeasured = Packing("H100 | nerfacto | tiny", H100_MB, curve(([33.2], 664), ([19.1] * 4, 592)), 4, {})
    assert "busy" not in unmeasured.describe(), "a CPU probe, or a measurement kept before gpu_busy existed"


@pytest.fixture
def four_gpus(tmp_path, monkeypatch) -> Path:
    """A stand-in nvidia-smi that lists four H100s (see the module's docstring); each call is a line of the file it
    returns, so a test can count them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "nvidia-smi-calls"
    smi = bin_dir / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'case "$*" in\n'
        f'  *name,memory.total*) for i in 1 2 3 4; do echo "NVIDIA H100 80GB HBM3, {H100_MB:.0f}"; done ;;\n'
        "esac\n"
    )
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(tmp_path / "no-mps"))  # whatever this machine runs
    return calls


@contextmanager
def mps_daemon(pipes: Path) -> Iterator[None]:
    """What nerftune sees of a running MPS control daemon: the socket `control` in its pipe directory (which the
    daemon removes as it quits)."""
    pipes.mkdir(exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as control:
        control.bind(str(pipes / "control"))
        control.listen()
        yield
    (pipes / "control").unlink()


def gpu_spec(tmp_path: Path, scene_dir: Path, resources: str, seeds: int = 4) -> Path:
    spec = tmp_path / "gpus.yaml"
    spec.write_text(
        f"name: gpus\ndata: {scene_dir}\nprofile: tiny\nspace: {{steps: 100, seed: {{values: {list(range(seeds))}}}}}\n"
        f"resources: {resources}\n"
    )
    return spec


def keep_measurement(spec: Path, storage: Path, per_trial_mb: float, trials_per_gpu: int) -> None:
    """A measurement as `measure_packing` would have kept it for this sweep."""
    prepared = prepare(spec, storage)
    measurements = curve(([20.0], per_trial_mb), ([17.0, 17.0], per_trial_mb), ([9.0] * 4, per_trial_mb))
    packing = Packing(
        prepared.packing_key, H100_MB, measurements, trials_per_gpu, {"frames": 1.0}, "2026-11-27 10:00", prepared.mps
    )
    write_packing(prepared.experiment_dir, packing)


def test_gpu_auto_says_it_will_measure_before_launch(four_gpus, scene_dir, tmp_path, capsys):
    spec = gpu_spec(tmp_path, scene_dir, "{cpu: 1, gpu: auto}")
    assert sweep.main([str(spec), "--storage", str(tmp_path / "sweeps"), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "gpu auto: measured before launch" in captured.out
    assert "4 GPU(s) (NVIDIA H100 80GB HBM3)" in captured.out
    assert "concurrent trials: as the measured packing allows" in captured.out
    assert "tiny-cuda-nn is not installed" in captured.err  # once, before the sweep, not once per module per trial
    assert len(four_gpus.read_text().splitlines()) == 1  # the GPUs are listed once, however many read them


def test_a_trial_may_ask_for_several_gpus_up_to_what_the_machine_has(four_gpus, scene_dir, tmp_path, capsys):
    storage = str(tmp_path / "sweeps")
    assert sweep.main([str(gpu_spec(tmp_path, scene_dir, "{cpu: 1, gpu: 2}")), "--storage", storage, "--dry-run"]) == 0
    plan = f"4 GPU(s) (NVIDIA H100 80GB HBM3), {cpu_count()} CPUs; concurrent trials: {min(2, cpu_count())}"
    assert plan in capsys.readouterr().out, "2 GPUs a trial: 2 trials on 4 GPUs"
    spec = gpu_spec(tmp_path, scene_dir, "{cpu: 1, gpu: 8}")
    assert sweep.main([str(spec), "--storage", storage]) == 2, "refused: Ray would wait for ever for 8 GPUs"
    assert capsys.readouterr().err == (
        f"error: {spec}: resources.gpu: each trial asks for 8 GPUs, and this machine has 4 "
        "(ask for at most 4; a share such as 0.5 puts two trials on each GPU)\n"
    )


def test_cuda_visible_devices_picks_the_gpus_listed(four_gpus, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    assert visible_gpus() == [Gpu("NVIDIA H100 80GB HBM3", H100_MB)] * 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_a_gpu_whose_memory_nvidia_smi_cannot_tell_is_never_packed(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "NVIDIA A100-SXM4-40GB MIG 3g.20gb, [N/A]"\n')  # a MIG slice
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    (gpu,) = visible_gpus()
    assert gpu == Gpu("NVIDIA A100-SXM4-40GB MIG 3g.20gb", 0.0)
    assert choose(curve(([20.0], 400), ([18.0, 18.0], 400), ([12.0] * 4, 400)), gpu.memory_mb) == 1


def test_the_plan_shows_the_kept_choice_and_fills_every_gpu(four_gpus, scene_dir, tmp_path, capsys):
    spec = gpu_spec(tmp_path, scene_dir, "{cpu: 0.25, gpu: auto}", seeds=8)  # 8 trials, to fill 4 GPUs x 2
    keep_measurement(spec, tmp_path / "sweeps", 400, trials_per_gpu=2)
    assert sweep.main([str(spec), "--storage", str(tmp_path / "sweeps"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "resources per trial: 0.25 cpu, 0.5 gpu (gpu auto: 2 trial(s) per GPU, 1.70x" in out
    # 4 GPUs x 2 trials; the CPUs hold more (2 cores / 0.25 = 8 here, the CPUs this process may use elsewhere)
    expected = min(8, int(cpu_count() / 0.25))
    assert f"4 GPU(s) (NVIDIA H100 80GB HBM3), {cpu_count()} CPUs; concurrent trials: {expected}" in out


def test_the_plan_bounds_the_training_time_from_the_kept_measurement(four_gpus, scene_dir, tmp_path, capsys):
    spec = gpu_spec(tmp_path, scene_dir, "{cpu: 1, gpu: auto}", seeds=9)
    spec.write_text(spec.read_text().replace("steps: 100", "steps: 3000"))
    assert sweep.main([str(spec), "--storage", str(tmp_path / "sweeps"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "training: at most 27,000 steps in all (9 trials x up to 3,000)\n" in out, "not measured: no time yet"
    keep_measurement(spec, tmp_path / "sweeps", 400, trials_per_gpu=2)  # 2 at once: 17.0 steps/s each
    assert sweep.main([str(spec), "--storage", str(tmp_path / "sweeps"), "--dry-run"]) == 0
    at_once = min(9, cpu_count(), 4 * 2)  # one CPU a trial; 4 GPUs of 2 trials each
    rounds = -(-9 // at_once)
    minutes = rounds * 3000 / 17.0 / 60  # every round as long as the longest trial at the packed speed
    assert (
        f"training: at most 27,000 steps in all (9 trials x up to 3,000), at most {minutes:.0f} min on these GPUs: "
        f"{rounds} rounds of up to {at_once} trials at once, each at 17.0 steps/s or faster (measured for the "
        "heaviest configuration of the spec; compiling, scoring and renders come on top)"
    ) in capsys.readouterr().out


def test_a_sweep_that_measures_its_packing_says_how_long_its_training_takes_at_most(
    four_gpus, scene_dir, tmp_path, capsys, monkeypatch
):
    spec = gpu_spec(tmp_path, scene_dir, "{cpu: 1, gpu: auto}", seeds=2)
    measurements = curve(([20.0], 400), ([19.0, 19.0], 400), ([9.0] * 4, 400))  # 2 at once pay 1.9x

    def measured(prepared, say):
        return Packing(prepared.packing_key, H100_MB, measurements, 2, {"method": "nerfacto"}, "now", False)

    monkeypatch.setattr(sweep, "measure_packing", measured)
    monkeypatch.setattr(sweep, "run", lambda *args: None)  # the trials themselves are other tests' business
    assert sweep.main([str(spec), "--storage", str(tmp_path / "sweeps")]) == 0
    out = capsys.readouterr().out
    assert "training: at most 200 steps in all (2 trials x up to 100)\n" in out, "the plan: not measured yet"
    assert "at most 5 s on these GPUs: 1 round of up to 2 trials at once, each at 19.0 steps/s or faster (measured " \
        "for the heaviest configuration of nerfacto;" in out, "after measuring"


def test_mps_is_found_by_its_control_socket(tmp_path, monkeypatch):
    pipes = tmp_path / "mps"
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(pipes))
    assert not mps_running(), "no pipe directory"
    pipes.mkdir()
    (pipes / "control").write_text("")
    assert not mps_running(), "a file that is no socket"
    (pipes / "control").unlink()
    with mps_daemon(pipes):
        assert mps_running()


def test_a_measurement_without_mps_is_not_reused_under_mps(four_gpus, scene_dir, tmp_path, capsys, monkeypatch):
    spec, storage = gpu_spec(tmp_path, scene_dir, "{cpu: 0.25, gpu: auto}", seeds=8), tmp_path / "sweeps"
    keep_measurement(spec, storage, 400, trials_per_gpu=2)
    pipes = tmp_path / "mps"
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(pipes))
    with mps_daemon(pipes):
        assert prepare(spec, storage).packing is None
        assert sweep.main([str(spec), "--storage", str(storage), "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "gpu auto: measured before launch" in out, "trials that run their kernels at once pack differently"
        assert "4 GPU(s) (NVIDIA H100 80GB HBM3, NVIDIA MPS on)" in out
        keep_measurement(spec, storage, 400, trials_per_gpu=4)
        assert prepare(spec, storage).packing.trials_per_gpu == 4
    assert prepare(spec, storage).packing.trials_per_gpu == 2, "the measurement without MPS is kept beside it"
    assert sweep.main([str(spec), "--storage", str(storage), "--dry-run"]) == 0
    assert "4 GPU(s) (NVIDIA H100 80GB HBM3), " in capsys.readouterr().out


def test_a_share_that_overfills_the_measured_memory_exits_2(four_gpus, scene_dir, tmp_path, capsys):
    storage = tmp_path / "sweeps"
    keep_measurement(gpu_spec(tmp_path, scene_dir, "{gpu: auto}"), storage, 30000, trials_per_gpu=2)
    spec = gpu_spec(tmp_path, scene_dir, "{gpu: 0.25}")  # the same sweep, now asking for 4 per GPU
    assert sweep.main([str(spec), "--storage", str(storage), "--dry-run"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: {spec}: resources.gpu: 0.25 puts 4 trials on each 81559 MB GPU"), line
    assert "each needs 30000 MB" in line and "use gpu: 0.5 or more, or gpu: auto" in line
    spec = gpu_spec(tmp_path, scene_dir, "{gpu: 0.5}")
    assert sweep.main([str(spec), "--storage", str(storage), "--dry-run"]) == 0


@pytest.mark.slow
def test_probes_train_real_copies_at_once_and_a_failing_copy_is_reported(scene_dir):
    job = ProbeJob(str(scene_dir), 8, "tiny", "auto", {"method": "nerfacto", "frames": 1.0, "seed": 0}, steps=10)
    results = measure(job, copies=(1, 2))
    assert [m.copies for m in results] == [1, 2]
    for m in results:
        assert m.error is None and len(m.steps_per_s) == m.copies and all(rate > 0 for rate in m.steps_per_s)
        assert m.peak_mb == [0.0] * m.copies and m.gpu_busy is None  # no GPU memory or GPU time on the CPU
    broken = ProbeJob(str(scene_dir), 8, "tiny", "auto", {"method": "nerfacto", "frames": 1000, "seed": 0}, steps=10)
    (failed,) = measure(broken, copies=(1, 2))  # stops at the first count that fails
    assert failed.copies == 1 and failed.aggregate == 0.0 and "1000" in failed.error
