"""Real nerfstudio training on the CPU with the tiny profile: it learns, repeats with a seed, resumes exactly."""

import math
import os
import subprocess
import sys

import pytest

from nerftune.data.dataset import load_dataset, write_view
from nerftune.nerf import lpips
from nerftune.nerf.config import build_config
from nerftune.nerf.loop import NerfTrainer, _mean_metric
from nerftune.outcomes import LPIPS_MISSING

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def view(scene_dir, tmp_path_factory):
    dataset = load_dataset(scene_dir)
    return write_view(dataset, dataset.train_indices(12), tmp_path_factory.mktemp("view"))


@pytest.fixture
def one_thread():
    """As in a one-CPU trial: multi-threaded reductions round differently run to run."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trainer(view, tmp_path, seed=0, steps=400, fast=False):
    return NerfTrainer(build_config("nerfacto", view, tmp_path, steps, seed, "cpu", "tiny"), fast=fast)


def test_tiny_nerfacto_learns(view, tmp_path):
    run = trainer(view, tmp_path)
    run.train(40)
    early = run.evaluate([0, 2]).metrics["psnr"]
    chunks = []
    run.train(400, check_every=40, on_chunk=chunks.append)
    scored = []
    late = run.evaluate([0, 2], previews=1, on_image=lambda done, total: scored.append((done, total)))
    assert scored == [(0, 2), (1, 2), (2, 2)], "how far it is, for the console"
    assert late.metrics["psnr"] > early + 2.0, (early, late.metrics)
    assert [c.first_step for c in chunks] == list(range(40, 400, 40))
    assert all(len(c.losses) == len(c.train_psnr) == 40 for c in chunks)
    assert len(late.previews) == 1 and late.previews[0].shape == (60, 240, 3)
    assert 0 < late.metrics["ssim"] <= 1
    assert late.rays_per_s > 0 and late.images == 2
    assert run.timings.steps_trained == 400 and run.timings.train_s > 0


def test_same_seed_same_losses_and_other_seed_differs(view, tmp_path):
    losses = [trainer(view, tmp_path / str(i), seed=s).train(15, check_every=1) for i, s in enumerate((3, 3, 4))]
    # equal up to the rounding of multi-threaded float reductions; another seed samples other rays
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert losses[0] != pytest.approx(losses[2], rel=1e-3)


def test_the_fast_path_compiles_apart_from_training_and_learns_as_eager_does(view, tmp_path, one_thread):
    runs, first, psnr = {}, {}, {}
    for fast in (False, True):  # one after the other: each seeds the global generators that training draws from
        runs[fast] = run = trainer(view, tmp_path / str(fast), fast=fast)
        first[fast] = run.train(3, check_every=1)
        run.train(300)
        psnr[fast] = run.evaluate().metrics["psnr"]
    # the same random stream (the warm-up draws from a generator of its own), the same hash grid values
    assert first[True] == pytest.approx(first[False], rel=1e-5)
    assert abs(psnr[True] - psnr[False]) < 1.0, psnr  # seeds alone move it by up to 1.5 dB
    compiled = runs[True].timings
    assert compiled.compile_s > 1.0 and runs[False].timings.compile_s == 0.0
    assert compiled.train_s < compiled.compile_s + compiled.train_s  # compiling is not counted as training
    grids = [m for m in runs[True].pipeline.model.modules() if type(m).__name__ == "HashEncoding"]
    assert len(grids) == 3 and all("pytorch_fwd" in vars(grid) for grid in grids)  # field + 2 proposal networks

    # the next trial in the same (reused) worker runs the graphs its grids' settings already have: no compiling,
    # and on one thread (a one-CPU trial) the same losses as the first compiled trial of this seed, bit for bit
    again = trainer(view, tmp_path / "again", fast=True)
    assert again.train(3, check_every=1) == first[True]
    assert again.timings.compile_s < compiled.compile_s / 3, (again.timings.compile_s, compiled.compile_s)


def test_compiled_scoring_leaves_training_as_it_was_and_scores_as_eager_code_does(view, tmp_path, one_thread):
    """On the CPU, `fast_path: auto` compiles the hash grids for scoring only, where the test set is large."""
    from nerftune.nerf.fast_path import choose, compiles_scoring, implementation, uncompile_hash_grids

    losses, runs = {}, {}
    for compiled in (False, True):  # one after the other: each seeds the global generators training draws from
        config = build_config("nerfacto", view, tmp_path / str(compiled), 400, 0, "cpu", "tiny")
        runs[compiled] = run = NerfTrainer(config, compiled_scoring=compiled)
        chunks = []
        run.train(60, check_every=20, on_chunk=chunks.append)
        run.evaluate([0])  # scoring between milestones leaves training as it would have been
        run.train(100, check_every=20, on_chunk=chunks.append)
        losses[compiled] = [loss for chunk in chunks for loss in chunk.losses]
    assert losses[True] == losses[False], "its training is eager code's, bit for bit"
    scoring = runs[True]
    assert scoring.compiled_scoring and scoring.timings.compile_s > 0 and runs[False].timings.compile_s == 0
    assert implementation(scoring.config, False, scoring.compiled_scoring) == "torch+compiled-scoring"
    compiled_psnr = scoring.evaluate().metrics["psnr"]
    uncompile_hash_grids(scoring.pipeline.model)
    assert scoring.evaluate().metrics["psnr"] == pytest.approx(compiled_psnr, abs=1e-3), "the same score"

    # what a trial chooses: auto on the CPU, a grid of nerfstudio's torch code, and a test set worth compiling for
    nerfacto, vanilla = scoring.config, build_config("vanilla-nerf", view, tmp_path / "v", 10, 0, "cpu", "tiny")
    assert compiles_scoring("auto", nerfacto, "cpu", 1_000_000)
    assert not compiles_scoring("auto", nerfacto, "cpu", 14_400), "3 images of 80x60: seconds, eager"
    assert not compiles_scoring("auto", nerfacto, "cuda", 1_000_000), "on CUDA the fast path compiles everything"
    assert not any(compiles_scoring(setting, nerfacto, "cpu", 1_000_000) for setting in (True, False))
    assert not compiles_scoring("auto", vanilla, "cpu", 1_000_000), "no hash grid"
    # and where it compiles training too (and so scoring): trials of a thousand steps or more on the CPU, every trial
    # on CUDA; the fast contraction on the CPU wherever the fast path is not turned off
    chosen = lambda *args: {name for name, on in choose(*args).items() if on is True}  # noqa: E731
    assert chosen("auto", nerfacto, "cpu", 1000, 14_400) == {"fast", "fast_contraction"}
    assert chosen("auto", nerfacto, "cpu", 999, 14_400) == {"fast_contraction"}
    assert chosen("auto", nerfacto, "cpu", 999, 1_000_000) == {"compiled_scoring", "fast_contraction"}
    assert chosen("auto", nerfacto, "cuda", 10, 1_000_000) == {"fast"}  # (the contraction: measured on the CPU)
    assert chosen(True, nerfacto, "cpu", 10, 14_400) == {"fast", "fast_contraction"}
    assert chosen(False, nerfacto, "cuda", 30000, 1_000_000) == set()
    assert chosen("auto", vanilla, "cpu", 30000, 1_000_000) == {"fast_contraction"}  # (it has none: no-op)
    # a kind by name: the fast path everywhere, however short the trial, with that kind; the grids otherwise
    assert choose("compiled-step", nerfacto, "cpu", 10, 14_400) == {
        "fast": True, "kind": "model", "compiled_scoring": False, "fast_contraction": True
    }
    assert [choose(s, nerfacto, "cuda", 10, 0)["kind"] for s in ("auto", True, "cuda-graphs", "triton")] == [
        "grid", "grid", "cudagraphs", "triton"
    ]
    assert not choose("cuda-graphs", vanilla, "cuda", 10, 0)["fast"], "no hash grid: nothing to speed up"


def test_the_fast_contraction_trains_and_scores_as_nerfstudios_code_bit_for_bit(view, tmp_path, one_thread):
    losses, psnr, contractions = {}, {}, {}
    for fast in (False, True):  # one after the other: each seeds the global generators training draws from
        config = build_config("nerfacto", view, tmp_path / str(fast), 400, 0, "cpu", "tiny")
        run = NerfTrainer(config, fast_contraction=fast)
        chunks = []
        run.train(100, check_every=20, on_chunk=chunks.append)
        losses[fast] = [loss for chunk in chunks for loss in chunk.losses]
        psnr[fast] = run.evaluate([0]).metrics["psnr"]
        contractions[fast] = [m for m in run.pipeline.model.modules() if type(m).__name__ == "SceneContraction"]
    assert losses[True] == losses[False] and psnr[True] == psnr[False]
    # one contraction, shared by the field and both proposal networks: nerfstudio's code in one, the fast one's
    assert len(contractions[True]) == 1 and "forward" in vars(contractions[True][0])
    assert "forward" not in vars(contractions[False][0])


NO_COMPILER_SCRIPT = """
import sys, warnings
from pathlib import Path
from nerftune.nerf.config import build_config
from nerftune.nerf.loop import NerfTrainer
config = build_config("nerfacto", Path(sys.argv[1]), Path(sys.argv[2]), 10, 0, "cpu", "tiny")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    run = NerfTrainer(config, fast=sys.argv[3] == "train", compiled_scoring=sys.argv[3] == "score")
print([str(warning.message) for warning in caught if "uncompiled" in str(warning.message)])
print(run.fast, run.compiled_scoring, run.compile_error.startswith("InductorError"), run.pipeline.training)
print(run.train(10) > 0, run.evaluate([0]).metrics["psnr"] > 0)
"""


@pytest.mark.parametrize("compiling", ["train", "score"])
def test_without_a_cpp_compiler_the_hash_grid_runs_uncompiled(view, tmp_path, compiling):
    """torch's inductor needs a C++ compiler on the CPU; a machine without one trains and scores with eager code."""
    env = {**os.environ, "CXX": str(tmp_path / "no-compiler"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", NO_COMPILER_SCRIPT, str(view), str(tmp_path / "out"), compiling],
        capture_output=True, text=True, env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said, outcome, works = done.stdout.splitlines()[-3:]
    assert "hash grid uncompiled: torch.compile failed" in said and "C++ compiler" in said, said
    assert outcome == "False False True True", "eager code, the reason kept, the model left in training mode"
    assert works == "True True"


def test_kept_graphs_compute_each_grids_own_values():
    """A reused worker keeps compiled graphs across trials (`fast_path.compile_hash_grids`): a grid of other
    settings but the same shapes must compute with its own resolutions and table, not the earlier grid's."""
    import torch
    from nerfstudio.field_components.encodings import HashEncoding
    from torch._dynamo.utils import counters

    from nerftune.nerf.fast_path import compile_hash_grids

    torch.manual_seed(0)
    points = torch.rand(4096, 3)
    outputs, graphs = [], []
    for max_res in (512, 128):  # same levels and table size: the same shapes, other values
        grid = HashEncoding(8, 16, max_res, 14, hash_init_scale=1.0, implementation="torch")
        compile_hash_grids(grid)
        with torch.no_grad():
            compiled, eager = grid(points), HashEncoding.pytorch_fwd(grid, points)
        assert torch.allclose(compiled, eager, atol=1e-5), (max_res, (compiled - eager).abs().max())
        outputs.append(eager)
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[1] == graphs[0], "the second grid ran the first one's graph (what this test is about)"
    assert not torch.allclose(outputs[0], outputs[1], atol=1e-2), "the test needs grids that compute differently"


def test_a_process_starts_its_graphs_afresh_every_few_trials(monkeypatch):
    """Each trial adds graphs; past dynamo's limit it would fall back to eager code silently, so the kept graphs
    are dropped when trial `TRIALS_PER_RESET` + 1 of a process compiles."""
    import torch

    from nerftune.nerf import fast_path

    resets = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(len(compiled)))
    monkeypatch.setattr(fast_path, "_trials_compiled", 0)  # a new process
    compiled = []
    for _ in range(2 * fast_path.TRIALS_PER_RESET + 1):
        fast_path.compile_hash_grids(torch.nn.Module())
        compiled.append(1)
    assert resets == [fast_path.TRIALS_PER_RESET, 2 * fast_path.TRIALS_PER_RESET], "before trials 9 and 17"


RESUME_SCRIPT = """
import sys, torch
from pathlib import Path
from nerftune.nerf.config import build_config
from nerftune.nerf.loop import NerfTrainer
torch.set_num_threads(1)  # as in a one-CPU trial: multi-threaded reductions round differently run to run
view, out, mode, kind = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
config = build_config("nerfacto", view, out / mode, 400, 0, "cpu", "tiny")
if kind == "model":  # the whole step compiled as `fast_path: compiled-step` trains it: inductor's random numbers,
    config.pipeline.datamanager.train_num_rays_per_batch = 64  # seeded by torch's generator, which checkpoints keep
run = NerfTrainer(config, fast=kind == "model", kind="model", fast_contraction=kind == "model")
print("compiled", run.fast and run.kind)
if mode == "straight":
    run.train(60)
    run.evaluate([0, 1])  # evaluation moves training state too (nerfacto's proposal-update counter)
    run.save(out / "mid.ckpt")
else:
    run.load(out / "mid.ckpt")
    print("resumed at", run.step)
run.train(120)
print("psnr", repr(run.evaluate([0, 1]).metrics["psnr"]))
"""


def test_a_milestone_at_step_s_scores_what_a_trial_of_s_steps_does(view, tmp_path, one_thread):
    """What the report's "how many steps are enough" reads off the learning curves rests on this: nerfstudio's
    schedules follow the step, not the run's length."""
    scored = []
    for steps in (60, 30):  # one after the other, as trials run: setting a trainer up seeds the process's generators
        run = trainer(view, tmp_path / str(steps), steps=steps)
        run.train(30)
        scored.append(run.evaluate([0, 2]).metrics)
    assert scored[0] == scored[1]  # to every digit


@pytest.mark.parametrize("kind", ["eager", "model"])
def test_a_trial_resumed_in_a_new_process_reports_what_an_uninterrupted_one_does(view, tmp_path, kind):
    """Eager code, and the whole training step compiled (`fast_path: compiled-step`): its checkpoint, loaded into a
    new process's compiled model, goes on as the uninterrupted run did."""

    def run(mode):
        done = subprocess.run(
            [sys.executable, "-c", RESUME_SCRIPT, str(view), str(tmp_path), mode, kind], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.splitlines()

    straight = run("straight")
    resumed = run("resumed")
    assert "resumed at 60" in resumed
    compiled = {"eager": "compiled False", "model": "compiled model"}[kind]
    assert compiled in resumed, "the kind asked for (a failed compile would have trained eager code)"
    assert resumed[-1] == straight[-1], (straight, resumed)  # to every digit


def test_lpips_is_empty_when_its_weights_cannot_be_had(view, tmp_path):
    run = trainer(view, tmp_path)
    run.train(5)
    value = run.evaluate([0]).metrics["lpips"]
    if lpips.lpips_unavailable_reason() is None:  # weights were cached on this machine
        assert value is not None and math.isfinite(value)
    else:
        assert value is None
        assert "alexnet" in LPIPS_MISSING.lower()


def test_fine_metrics_of_mipnerf_are_the_model_metrics():
    scores = [
        {"psnr": 20.0, "coarse_psnr": 18.0, "fine_psnr": 21.0, "fine_ssim": 0.7, "fine_lpips": float("nan")},
        {"psnr": 22.0, "coarse_psnr": 19.0, "fine_psnr": 23.0, "fine_ssim": 0.9, "fine_lpips": float("nan")},
    ]
    assert _mean_metric(scores, "psnr") == 22.0
    assert _mean_metric(scores, "ssim") == pytest.approx(0.8)
    assert _mean_metric(scores, "lpips") is None
    assert _mean_metric([{"psnr": 19.0}], "psnr") == 19.0
