"""benchmarks/mps.py: the private MPS daemon of `gpu.py`'s part `mps`, started and quit around the packing curve.

This machine has no NVIDIA driver, so a stand-in `nvidia-cuda-mps-control` does what nerftune sees of the real one:
with `-d` it leaves a daemon that listens on `control` in its pipe folder; `quit` on its input stops the daemon, which
removes the socket. Whether MPS makes packed trials faster is for a GPU run to measure."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

from mps import private_mps  # noqa: E402

from nerftune.machine import mps_running  # noqa: E402

STAND_IN = f"""#!{sys.executable}
import os, signal, socket, sys, time
pipes, log = os.environ["CUDA_MPS_PIPE_DIRECTORY"], os.environ["CUDA_MPS_LOG_DIRECTORY"]
if os.environ.get("FAIL_TO_START"):
    sys.exit("An instance of this daemon is already running")
if sys.argv[1:] == ["-d"]:
    open(os.path.join(log, "calls"), "a").write("start\\n")
    if os.fork() == 0:  # the daemon, on its own (the command returns at once, as the real one does)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1, 2):
            os.dup2(devnull, stream)
        time.sleep(0.5)  # the socket comes a little later, as a real daemon's might
        control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        control.bind(os.path.join(pipes, "control"))
        control.listen()
        open(os.path.join(pipes, "pid"), "w").write(str(os.getpid()))
        signal.signal(signal.SIGTERM, lambda *_: (os.remove(os.path.join(pipes, "control")), os._exit(0)))
        time.sleep(120)
else:
    command = sys.stdin.read().strip()
    open(os.path.join(log, "calls"), "a").write(command + "\\n")
    if command == "quit":
        os.kill(int(open(os.path.join(pipes, "pid")).read()), signal.SIGTERM)
        while os.path.exists(os.path.join(pipes, "control")):
            time.sleep(0.05)
"""


@pytest.fixture
def control(tmp_path, monkeypatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "nvidia-cuda-mps-control"
    program.write_text(STAND_IN)
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_MPS_PIPE_DIRECTORY", raising=False)
    monkeypatch.delenv("CUDA_MPS_LOG_DIRECTORY", raising=False)
    return program


def test_a_private_daemon_serves_the_processes_started_within_and_quits(control, tmp_path):
    folder = tmp_path / "mps"
    with private_mps(folder):
        assert mps_running(), "nerftune's own check finds the daemon this process's children will use"
        seen = subprocess.run(
            [sys.executable, "-c", "import os; print(os.environ['CUDA_MPS_PIPE_DIRECTORY'])"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert seen.stdout.strip() == str(folder / "pipe")
    assert (folder / "log" / "calls").read_text().split() == ["start", "quit"]
    assert not (folder / "pipe" / "control").exists(), "the daemon quit"
    assert "CUDA_MPS_PIPE_DIRECTORY" not in os.environ and "CUDA_MPS_LOG_DIRECTORY" not in os.environ
    assert not mps_running()


def test_the_daemon_quits_when_the_curve_fails(control, tmp_path):
    with pytest.raises(ZeroDivisionError), private_mps(tmp_path / "mps"):
        1 / 0
    assert (tmp_path / "mps" / "log" / "calls").read_text().split() == ["start", "quit"]
    assert "CUDA_MPS_PIPE_DIRECTORY" not in os.environ


def test_a_daemon_that_cannot_start_or_a_missing_one_says_why(control, tmp_path, monkeypatch):
    monkeypatch.setenv("FAIL_TO_START", "1")
    with pytest.raises(RuntimeError, match="-d failed .*already running"), private_mps(tmp_path / "mps"):
        pass
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(RuntimeError, match="nvidia-cuda-mps-control is not installed"), private_mps(tmp_path / "m"):
        pass
