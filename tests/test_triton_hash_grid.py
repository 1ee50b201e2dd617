"""The Triton hash grid (`nerftune/nerf/triton_hash_grid.py`) against nerfstudio's pure-torch one, in Triton's CPU
interpreter: the same encodings, and the same gradients for the table and the positions."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton comes with CUDA builds")

# run in a process of its own: Triton picks its interpreter when a kernel is defined, from TRITON_INTERPRET
CHECK = textwrap.dedent(
    """
    import json
    import torch
    from nerfstudio.field_components.encodings import HashEncoding
    from nerftune.nerf.fast_path import implementation, uncompile_hash_grids
    from nerftune.nerf.triton_hash_grid import encode, use_triton_hash_grids

    torch.manual_seed(0)
    found = {}
    # nerfacto's grid (16 levels of 2^19 rows) and a small one whose 64 rows per level collide often
    for name, grid in {
        "nerfacto": HashEncoding(16, 16, 2048, 19, implementation="torch"),
        "small": HashEncoding(4, 4, 64, 6, implementation="torch"),
    }.items():
        with torch.no_grad():
            grid.hash_table.mul_(500)  # features of a trained grid's size, not the initial 1e-3
        positions = torch.rand(2, 150, 3)
        # grid nodes (ceil = floor), the box's faces, and positions outside it
        positions[0, :5] = torch.tensor([[0.0, 0, 0], [1, 1, 1], [0.5, 0.25, 1], [-0.1, 1.2, 0.3], [2, -3, 0.5]])
        weights = torch.randn(2, 150, grid.get_out_dim())
        mine = positions.clone().requires_grad_(True)
        theirs = positions.clone().requires_grad_(True)
        expected = grid.pytorch_fwd(theirs)
        (expected * weights).sum().backward()
        table_grad, grid.hash_table.grad = grid.hash_table.grad, None
        got = encode(mine, grid.hash_table, grid.scalings)
        (got * weights).sum().backward()
        without = positions.clone()  # positions that need no gradient: only the table's
        grid.hash_table.grad = None
        (encode(without, grid.hash_table, grid.scalings) * weights).sum().backward()
        found[name] = {
            "shape": list(got.shape) == list(expected.shape),
            "values": (got - expected).abs().max().item(),
            "table": ((grid.hash_table.grad - table_grad).abs().max() / table_grad.abs().max()).item(),
            "positions": ((mine.grad - theirs.grad).abs().max() / theirs.grad.abs().max()).item(),
            "table_rows_touched": int((table_grad != 0).any(dim=1).sum()),
        }
    model = torch.nn.Sequential(HashEncoding(4, 4, 64, 6, implementation="torch"))
    eager = model[0].pytorch_fwd(positions)
    found["grids_sped_up"] = use_triton_hash_grids(model)
    found["through_the_module"] = (model(positions) - eager).abs().max().item()
    uncompile_hash_grids(model)
    found["restored"] = model[0].pytorch_fwd.__name__ == "pytorch_fwd"
    try:
        encode(positions, torch.zeros(3 * 100, 2), torch.ones(3))
    except ValueError as error:
        found["bad_table"] = str(error)
    print(json.dumps(found))
    """
)


def test_triton_hash_grid_matches_nerfstudios():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("nerfacto", "small"):
        grid = found[name]
        assert grid["shape"], name
        assert grid["values"] == 0.0, (name, grid)  # the same float operations in the same order
        # gradients: the same sums in another order (atomics), so within float32 rounding
        assert grid["table"] < 1e-5 and grid["positions"] < 1e-5, (name, grid)
        assert grid["table_rows_touched"] > 100, (name, grid)
    assert found["grids_sped_up"] == 1 and found["through_the_module"] == 0.0 and found["restored"], found
    assert found["bad_table"] == "a hash table of 300 rows is not 3 levels of a power of two", found


# compiled for NVIDIA GPUs (Ampere, Hopper) on this machine, GPU or not: Triton's own compiler and ptxas find what
# the interpreter lets pass (types, casts, unsupported operations)
COMPILE = textwrap.dedent(
    """
    import json
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from nerftune.nerf.triton_hash_grid import _backward, _forward

    common = {"inputs": "*fp32", "table": "*fp32", "scalings": "*fp32"}
    sizes = {"points": "i32", "levels": "i32", "table_size": "i32", "FEATURES": "constexpr", "BLOCK": "constexpr"}
    forward = common | {"out": "*fp32"} | sizes
    backward = common | {"grad_out": "*fp32", "grad_table": "*fp32", "grad_inputs": "*fp32"} | sizes
    backward |= {"INPUT_GRAD": "constexpr"}
    kernels = [(_forward, forward, {}), (_backward, backward, {"INPUT_GRAD": True})]
    kernels += [(_backward, backward, {"INPUT_GRAD": False})]
    built = []
    for kernel, signature, flags in kernels:
        constants = {"FEATURES": 2, "BLOCK": 128} | flags
        constexprs = {(kernel.arg_names.index(name),): value for name, value in constants.items()}
        for arch in (80, 90):
            source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
            binary = triton.compile(source, target=GPUTarget("cuda", arch, 32))
            built.append(len(binary.asm["cubin"]) > 0)
    print(json.dumps(built))
    """
)


def test_triton_hash_grid_compiles_for_nvidia_gpus(tmp_path):
    env = {**os.environ, "TRITON_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", COMPILE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True] * 6


def test_triton_is_recorded_as_the_implementation():
    from nerftune.nerf.fast_path import implementation
    from nerftune.nerf.methods import method_config

    config = method_config("nerfacto")
    config.pipeline.model.implementation = "torch"
    assert implementation(config, True, kind="triton") == "torch+triton"
    assert implementation(config, True) == "torch+compile"
    assert implementation(config, False, kind="triton") == "torch"
