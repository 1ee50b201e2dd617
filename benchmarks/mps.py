"""A private NVIDIA MPS (Multi-Process Service) daemon, for `gpu.py`'s packing curve under MPS.

Without MPS a GPU takes the processes that share it in turn, so packed trials only fill the time one leaves it idle
(`nerftune.packing.ceiling`); under MPS the kernels of several processes can run at once. The daemon started here has
pipe and log folders of its own, so only processes that name them (this one's children, while it runs) use it, and
it quits at the end. It changes none of the GPU's settings: MPS needs no change of compute mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CONTROL = "nvidia-cuda-mps-control"


@contextmanager
def private_mps(folder: Path, start_s: float = 10.0) -> Iterator[None]:
    """Within it, NVIDIA's MPS runs for the processes this one starts (CUDA_MPS_PIPE_DIRECTORY and
    CUDA_MPS_LOG_DIRECTORY name its folders in `os.environ`); raises RuntimeError where it cannot start."""
    control = shutil.which(CONTROL)
    if control is None:
        raise RuntimeError(f"{CONTROL} is not installed (it comes with NVIDIA's driver utilities)")
    folders = {"CUDA_MPS_PIPE_DIRECTORY": folder / "pipe", "CUDA_MPS_LOG_DIRECTORY": folder / "log"}
    for path in folders.values():
        path.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **{name: str(path) for name, path in folders.items()}}
    started = subprocess.run([control, "-d"], env=env, capture_output=True, text=True, timeout=30)
    if started.returncode != 0:
        raise RuntimeError(f"{CONTROL} -d failed ({started.returncode}): {started.stderr.strip()[-300:]}")
    before = {name: os.environ.get(name) for name in folders}
    try:
        deadline = time.monotonic() + start_s
        while not (folders["CUDA_MPS_PIPE_DIRECTORY"] / "control").is_socket():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{CONTROL} started, and its control socket did not appear in {start_s:g} s")
            time.sleep(0.1)
        os.environ.update({name: env[name] for name in folders})
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        subprocess.run([control], input="quit\n", env=env, capture_output=True, text=True, timeout=60)
