"""Pre-flight and the plan: a good spec prepares, --dry-run prints the plan, and none of it loads the heavy stack."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from nerftune import sweep
from nerftune.nerf import methods
from nerftune.nerf.overrides import OverrideError
from nerftune.preflight import prepare

from conftest import ROOT

HEAVY = ("torch", "ray", "nerfstudio", "mlflow")


def spec_text(scene_dir, extra=""):
    return f"""\
name: t
data: {scene_dir}
space:
  frames: {{values: [2, 8]}}
  method: nerfacto
  steps: 50
  pipeline.model.num_proposal_samples_per_ray: {{value: [64, 32]}}
{extra}"""


def test_a_good_spec_prepares(scene_dir, write_spec, tmp_path):
    prepared = prepare(write_spec(spec_text(scene_dir)), tmp_path / "sweeps")
    (scene,) = prepared.scenes.values()
    assert scene.data_dir == scene_dir and scene.name == scene_dir.name
    assert len(scene.dataset.pool) == 21
    assert prepared.spec.fixed["pipeline.model.num_proposal_samples_per_ray"] == [64, 32]
    assert any("no GPU" in w for w in prepared.warnings) or prepared.gpus


def test_dry_run_prints_the_plan_and_starts_nothing(scene_dir, write_spec, tmp_path, capsys):
    text = spec_text(
        scene_dir, extra="scheduler: {grace_period: 10, reduction_factor: 2}\nresources: {cpu: 1, gpu: 0}\n"
    )
    assert sweep.main([str(write_spec(text)), "--dry-run", "--storage", str(tmp_path / "sweeps")]) == 0
    out = capsys.readouterr().out
    assert "rungs at steps 10, 20, 40" in out
    assert "frames: 2, 8" in out and "resources per trial: 1 cpu" in out
    assert "num_proposal_samples_per_ray: [64, 32]  (fixed)" in out
    assert "novel views" not in out, "no render section, no renders"
    assert not (tmp_path / "sweeps" / "t").exists(), "a dry run starts no sweep"


def test_a_studys_plan_says_how_closely_its_replicates_will_pin_down_a_mean(scene_dir, write_spec, tmp_path, capsys):
    seeds = spec_text(scene_dir, "replicates: seed\n").replace("  method:", "  seed: {values: [0, 1, 2]}\n  method:")
    for text in (seeds, spec_text(scene_dir)):
        assert sweep.main([str(write_spec(text)), "--dry-run", "--storage", str(tmp_path / "sweeps")]) == 0
    study, plain = capsys.readouterr().out.split("\nsweep t:")
    assert "\nreplicates: 3 seeds per configuration: a configuration's mean will be known to within 2.5 times" in study
    assert "replicates:" not in plain, "no replicates, no line"


def test_a_plan_over_frame_subsets_says_where_they_take_the_same_frames(scene_dir, write_spec, tmp_path, capsys):
    text = spec_text(scene_dir, "replicates: frame_subset\n").replace(
        "  frames: {values: [2, 8]}", "  frames: {values: [2, 21]}\n  frame_subset: {values: [0, 1, 2]}"
    )
    assert sweep.main([str(write_spec(text)), "--dry-run", "--storage", str(tmp_path / "sweeps")]) == 0
    out = capsys.readouterr().out
    assert "(2 configurations x 3 frame_subset replicates)" in out
    assert "3 values of frame_subset per configuration" in out and "times the replicate noise" in out
    # 21 frames is the whole pool: every subset is it
    assert (
        "\nframe_subset: 0 takes evenly spaced frames, the others one frame from each stretch of the training pool; "
        "distinct training sets: 3 at frames 2, 1 at frames 21 (at frames 21 all 3 take the same frames)\n"
    ) in out


def test_the_plan_runs_no_more_trials_at_once_than_the_sweep_has(scene_dir, write_spec, tmp_path, capsys):
    spec = write_spec(f"name: one\ndata: {scene_dir}\nspace: {{steps: 10}}\nresources: {{cpu: 0.25, gpu: 0}}\n")
    assert sweep.main([str(spec), "--dry-run", "--storage", str(tmp_path / "sweeps")]) == 0
    assert "concurrent trials: 1\n" in capsys.readouterr().out, "one trial, however many CPUs hold more"


def test_the_plan_says_which_trials_render_novel_views(scene_dir, write_spec, tmp_path, capsys):
    circles = "circles: {radii: [0.3], distances: [1.0], views: 3}"
    for render, said in (
        (f"{{{circles}, best_k: 2, per: frames}}", "of each of the 2 best trials per frames after the sweep, with the"),
        (f"{{{circles}, best_k: 1}}", "of the best trial after the sweep, with the data's crop"),
        # best_k is 3 by default, and a grid over 2 frame counts has 2 trials
        (f"{{{circles}}}\nsearch: {{algorithm: grid}}", "of each of the 2 best trials after the sweep"),
        (f"{{{circles}, trials: each, crop: false, video: true}}", "of every trial as it completes, with an mp4 each"),
    ):
        spec = write_spec(spec_text(scene_dir, extra=f"render: {render}\n"))
        assert sweep.main([str(spec), "--dry-run", "--storage", str(tmp_path / "sweeps")]) == 0
        line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("novel views:"))
        assert line.startswith("novel views: 6 (circles) ") and said in line, line  # 3 around, 3 on the trajectory


def upscaled_copy(scene_dir: Path, out: Path, factor: int) -> Path:
    """The scene as a capture of `factor` times its size (its images resized, its intrinsics scaled)."""
    shutil.copytree(scene_dir, out)
    transforms = json.loads((out / "transforms.json").read_text())
    for key in ("w", "h", "fl_x", "fl_y", "cx", "cy"):
        transforms[key] *= factor
    (out / "transforms.json").write_text(json.dumps(transforms))
    for image in (out / "images").iterdir():
        with Image.open(image) as small:
            large = small.resize((small.width * factor, small.height * factor))
        large.save(image)
    return out


def test_the_plan_says_when_scoring_the_test_set_on_the_cpu_takes_minutes(scene_dir, write_spec, tmp_path, capsys):
    """A real capture at 2000 px on the CPU: each completed trial renders its 3 test images whole, 9 million rays;
    at half the size, 2.2 million (4 minutes eager). nerfacto scores them compiled (`fast_path: auto`), unless the
    spec says not to."""
    large = upscaled_copy(scene_dir, tmp_path / "large", 25)  # 80x60 -> 2000x1500
    fix = "for a study on the CPU, train and score on smaller images: `data: {path: ..., downscale: %d}`"
    for data, fast_path, warned, compiled in (
        (large, "auto", f"9.0 million rays, 6 minutes or more on the CPU at the tiny profile's 27 thousand rays a "
         f"second (compiled); {fix % 2}", True),
        (large, "false", f"9.0 million rays, 17 minutes or more on the CPU at the tiny profile's 9 thousand rays a "
         f"second; {fix % 3}", False),
        (f"{{path: {large}, downscale: 2}}", "auto", None, True),
        (scene_dir, "auto", None, False),  # 3 images of 80x60: seconds, not worth compiling
    ):
        spec = write_spec(
            f"name: cost\ndata: {data}\nspace: {{steps: 10}}\nresources: {{gpu: 0}}\nfast_path: {fast_path}\n"
        )
        assert sweep.main([str(spec), "--dry-run", "--storage", str(tmp_path / "sweeps")]) == 0
        out, err = capsys.readouterr()
        said = [line for line in err.splitlines() if "test images whole" in line]
        expected = "warning: each trial that completes renders its 3 test images whole for its last evaluation: "
        assert said == ([expected + warned] if warned else []), data
        assert (f"fast path: {fast_path} (on the CPU: scoring compiled);" in out) == compiled, out


def test_the_plan_says_which_cpu_trials_compile_their_training(scene_dir, write_spec, tmp_path, capsys):
    """`fast_path: auto` on the CPU compiles training for trials of 1000 steps or more (they score compiled too);
    the demo's 450-step trials and the tests' stay eager code's."""
    from nerftune.cpu_compile import TRAINING_COMPILE_STEPS, compiles_scoring, compiles_training

    assert TRAINING_COMPILE_STEPS == 1000
    assert compiles_training("auto", 1000) and not compiles_training("auto", 999)
    assert compiles_training(True, 10) and not compiles_training(False, 30000)
    assert compiles_scoring("auto", 2000, 100) and compiles_scoring("auto", 10, 250_000)
    assert not compiles_scoring("auto", 10, 249_999) and not compiles_scoring(False, 30000, 10**7)
    for steps, fast_path, said in (
        ("2000", "auto", "auto (on the CPU: training and scoring compiled)"),
        ("{values: [450, 3000]}", "auto", "auto (on the CPU: training compiled for trials of 1000 steps or more, "
         "and their scoring)"),
        ("{type: int, min: 200, max: 5000}", "auto", "auto (on the CPU: training compiled for trials of 1000 steps "
         "or more, and their scoring)"),
        ("450", "auto", "auto"),  # 3 test images of 80x60: nothing pays
        ("30", "true", "true (on the CPU: training and scoring compiled)"),
        ("30000", "false", "false"),
    ):
        spec = write_spec(
            f"name: cost\ndata: {scene_dir}\nspace: {{steps: {steps}}}\nresources: {{gpu: 0}}\nfast_path: {fast_path}\n"
            "scheduler: {type: none}\n"
        )
        assert sweep.main([str(spec), "--dry-run", "--storage", str(tmp_path / "sweeps")]) == 0
        out = capsys.readouterr().out
        assert f"fast path: {said}; output:" in out, (steps, out)


def test_the_plan_says_when_trials_at_once_would_not_fit_memory(scene_dir, write_spec, tmp_path, monkeypatch, capsys):
    """21 training images of 1600x1200 are about 1 GB a trial as float32 (two copies at the peak), 2.2 GB with the
    process: two at once do not fit in 4 GB, one does; at half the size both fit."""
    from nerftune import trial_memory
    from nerftune.machine import memory_gb

    assert memory_gb() > 1, "this machine's own memory is known"
    large = upscaled_copy(scene_dir, tmp_path / "large", 20)
    monkeypatch.setattr(trial_memory, "memory_gb", lambda: 4.0)
    two_seeds = "{values: [0, 1]}"
    for data, seeds, warned in (
        (large, two_seeds, "2 trial(s) at once take about 4 GB of memory (2.2 GB each, most of it their training "
         "images as float32), and this machine has 4 GB: the system would kill trials; set max_concurrent_trials: 1 "
         "or `data: {path: ..., downscale: 2}` (smaller training images)"),
        (f"{{path: {large}, downscale: 2}}", two_seeds, None),
        (large, "1", None),  # a sweep of one trial: one at once
    ):
        spec = write_spec(
            f"name: memory\ndata: {data}\nspace: {{steps: 10, frames: 21, seed: {seeds}}}\n"
            "resources: {gpu: 0, cpu: 0.5}\nmax_concurrent_trials: 2\nsearch: {algorithm: grid}\n"
        )
        assert sweep.main([str(spec), "--dry-run", "--storage", str(tmp_path / "sweeps")]) == 0
        said = [line for line in capsys.readouterr().err.splitlines() if "GB of memory" in line]
        assert said == ([f"warning: {warned}"] if warned else []), data


def test_the_plan_says_when_training_on_the_cpu_takes_hours(scene_dir, write_spec, tmp_path, capsys):
    """nerfacto trains some 0.23 steps/s a core at nerfstudio's own settings with its grid compiled (trials of 1000
    steps or more compile), 0.1 eager, and 32 at the tiny profile: two 30,000-step trials one after the other take
    3 days, 7 eager, half an hour tiny (not said); 300,000 tiny steps each, 5 hours. A sweep over nerfacto and
    vanilla-nerf (1.7 steps/s tiny) is judged by vanilla-nerf: four 4000-step trials, 2.6 hours."""
    default = "up to 30,000 steps a trial, 1 trial at once, nerfacto's default profile at some"
    for profile, steps, fast_path, warned, method in (
        ("default", 30000, "auto", f"3 days: {default} 0.23 steps/s a core (compiled hash grid, measured on a 2-core "
         "machine); for a study on the CPU, `profile: tiny` trains about 139x faster; for nerfacto's own settings, "
         "a GPU", "nerfacto"),
        ("default", 30000, "false", f"7 days: {default} 0.1 steps/s a core (eager hash grid, measured on a 2-core "
         "machine); for a study on the CPU, `profile: tiny` trains about 190x faster; for nerfacto's own settings, "
         "a GPU", "nerfacto"),
        ("tiny", 30000, "auto", None, "nerfacto"),
        ("tiny", 300000, "auto", "5.2 h: up to 300,000 steps a trial, 1 trial at once, nerfacto's tiny profile at "
         "some 32 steps/s a core (compiled hash grid, measured on a 2-core machine); train fewer steps or trials, or "
         "on a GPU", "nerfacto"),
        ("tiny", 4000, "auto", "2.6 h: up to 4,000 steps a trial, 1 trial at once, vanilla-nerf's tiny profile at some "
         "1.7 steps/s a core (the slowest of its methods, measured on a 2-core machine); train fewer steps or trials, "
         "or on a GPU", "{values: [nerfacto, vanilla-nerf]}"),
    ):
        spec = write_spec(
            f"name: long\ndata: {scene_dir}\nprofile: {profile}\nfast_path: {fast_path}\n"
            f"space: {{steps: {steps}, seed: {{values: [0, 1]}}, method: {method}}}\nresources: {{gpu: 0, cpu: 1}}\n"
            "max_concurrent_trials: 1\nsearch: {algorithm: grid}\n"
        )
        assert sweep.main([str(spec), "--dry-run", "--storage", str(tmp_path / "sweeps")]) == 0
        said = [line for line in capsys.readouterr().err.splitlines() if "training on the CPU" in line]
        assert said == ([f"warning: training on the CPU takes up to about {warned}"] if warned else []), profile


def test_the_plan_of_a_study_over_two_scenes_lists_each_test_set(scene_dir, write_spec, tmp_path, capsys):
    text = f"name: two\ndata: [{scene_dir}, {{path: {scene_dir}, name: sparse, test_every: 4}}]\nspace: {{steps: 10}}\n"
    assert sweep.main([str(write_spec(text)), "--dry-run", "--storage", str(tmp_path / "sweeps")]) == 0
    out = capsys.readouterr().out
    assert "data: 2 scenes, each with its own test set:" in out
    assert f"  {scene_dir.name}: {scene_dir} (24 frames of 80x60: 21 in the training pool, 3 test frames" in out
    assert f"  sparse: {scene_dir} (24 frames of 80x60: 18 in the training pool, 6 test frames" in out
    assert f"scene: {scene_dir.name}, sparse" in out


def test_validating_a_spec_and_a_dry_run_import_no_torch_ray_nerfstudio_or_mlflow(scene_dir, write_spec, tmp_path):
    spec = write_spec(spec_text(scene_dir))
    methods.method_facts()  # the registry cache exists (the first check on a new installation builds it)
    probe = f"""
import sys
from nerftune.spec import load_spec
load_spec({str(spec)!r})
loaded = [m for m in {HEAVY!r} if m in sys.modules]
assert not loaded, f"loading a spec imported {{loaded}}"
from nerftune import sweep
assert sweep.main([{str(spec)!r}, "--dry-run", "--storage", {str(tmp_path / "sweeps")!r}]) == 0
loaded = [m for m in {HEAVY!r} if m in sys.modules]
assert not loaded, f"a dry run imported {{loaded}}"
"""
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rungs at steps" in result.stdout


def test_a_sweeps_driver_leaves_torch_and_nerfstudio_to_the_trials_workers():
    probe = """
import sys
import nerftune.sweep, nerftune.tuner
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
loaded = [m for m in ("torch", "nerfstudio") if m in sys.modules]
assert not loaded, f"the driver's modules imported {loaded}"
"""
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_tunes_callback_count_leaves_wandb_out_of_the_driver_for_the_run_only():
    """Tune counts a run's callbacks by importing its W&B integration, which imports wandb (the first trial started
    about 1.5 s later with it: benchmarks/launch.py --compare wandb). The second assertion fails if Tune stops doing
    so (the guard is then dead code); afterwards both import as before."""
    probe = """
import sys
from ray.air._internal.usage import _count_callbacks
from ray.tune.logger import JsonLoggerCallback
from nerftune.tuner import without_wandb
with without_wandb():
    assert _count_callbacks([JsonLoggerCallback()]) == {"JsonLoggerCallback": 1}
    assert "ray.air.integrations.wandb" in sys.modules, "Tune no longer imports its W&B integration to count"
    assert sys.modules["wandb"] is None
assert "wandb" not in sys.modules and "ray.air.integrations.wandb" not in sys.modules
"""
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_ray_imports_without_jsonschemas_iri_grammars():
    """`make install` removes rfc3987-syntax, which pip installs again each time: with it, each of a sweep's Ray
    processes compiles 38 grammars as it imports jsonschema, and a sweep's first trial starts about 9 s later on 2
    cores (benchmarks/launch.py)."""
    probe = "import sys, ray; print('rfc3987_syntax' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr[-2000:] or "ray imported rfc3987_syntax: run make install"


def test_the_registry_loads_without_searching_the_stack_and_leaves_nerfstudios_check_in_place():
    """nerfstudio's stand-ins for the methods it does not ship each call `inspect.stack()` as its registry is
    imported (about 3 s per process): through nerftune they are not asked, the registry still lists them, and the
    check is theirs again afterwards. The first line fails if nerfstudio stops calling it (the work-around is then
    dead code)."""
    probe = """
import inspect
outer, calls = inspect.getouterframes, []  # what inspect.stack() calls: the frames it sees are the same
inspect.getouterframes = lambda *args, **kwargs: calls.append(1) or outer(*args, **kwargs)
from nerfstudio.configs.external_methods import ExternalMethodDummyTrainerConfig, get_external_methods
check = ExternalMethodDummyTrainerConfig.__post_init__
external, _ = get_external_methods()
assert len(calls) == len(external) > 0, "nerfstudio's stand-ins no longer search the stack"
calls.clear()
from nerftune.nerf.methods import registry
methods = registry()
assert not calls, f"inspect.stack was called {len(calls)} times"
assert set(external) <= set(methods) and "nerfacto" in methods
assert ExternalMethodDummyTrainerConfig.__post_init__ is check
"""
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


OVERRIDES = [
    ("pipeline.model.hidden_dim", 64),
    ("pipeline.model.hidden_dim", 8.5),
    ("pipeline.model.hidden_dimm", 8),
    ("pipeline.model.implementation", "torch"),
    ("pipeline.model.implementation", "cuda"),
    ("pipeline.model.num_proposal_samples_per_ray", [64, 32]),
    ("pipeline.model.proposal_net_args_list", [{"hidden_dim": 16, "log2_hashmap_size": 12}]),
    ("pipeline.model.use_appearance_embedding", 1),
    ("optimizers.fields.optimizer.lr", 1),
    ("optimizers.fieldz.optimizer.lr", 0.01),
    ("pipeline.datamanager.train_num_rays_per_batch", 512),
    ("pipeline.datamanager.num_processes", 2),  # the parallel data manager's: a trial's in-process one has none
]


@pytest.mark.parametrize("path, value", OVERRIDES)
def test_the_cached_registry_judges_overrides_as_the_live_config_does(path, value):
    from nerftune.nerf.config import build_config
    from nerftune.nerf.overrides import set_path

    live = build_config("nerfacto", ROOT, ROOT, 10, 0, "cpu")

    def verdict(check):
        try:
            check()
            return "ok"
        except OverrideError as error:
            return str(error)

    cached = verdict(lambda: methods.check_override("nerfacto", path, value))
    assert cached == verdict(lambda: set_path(live, path, value))
    cache_file = methods.cache_dir() / f"methods-{methods.registry_key()}.json"
    assert "nerfacto" in json.loads(cache_file.read_text())


def test_the_registry_cache_key_follows_the_plugins(monkeypatch):
    key = methods.registry_key()
    monkeypatch.setenv("NERFSTUDIO_METHOD_CONFIGS", "mine=my_module:config")
    assert methods.registry_key() != key, "a plugin variable of its own: another registry"
