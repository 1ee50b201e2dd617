"""Real servers for the tests: MLflow's tracking server and UI, and PostgreSQL in a temporary data directory."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


PASSWORD = "pg-Secret-7f3a9c"  # the test database's, given to servers and sweeps in PGPASSWORD only
RAY_ENV = {  # every process of a test cluster: no token authentication (Ray 2.60 turns it on where a token exists)
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_mlflow(
    command: str, store: str | Path, folder: Path, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """`mlflow server` (artifacts served from `folder/server-artifacts`) or `mlflow ui` on `store`: a SQLite file,
    or a database URI."""
    uri = store if "://" in str(store) else f"sqlite:///{store}"
    args = [
        sys.executable,
        "-m",
        "mlflow",
        command,
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # one request worker, not four: enough for a test's few trials, and up about 4 s sooner on 2 cores
        "--workers",
        "1",
    ]
    if command == "server":
        args += ["--artifacts-destination", str(folder / "server-artifacts")]
    # its own session: mlflow starts uvicorn (and job workers, if enabled) that must be stopped with it (stop_mlflow)
    process = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # MLflow 3's job runner (seven processes for its GenAI jobs, which nerftune never uses) made each start
        # 16 to 21 s instead of 12 to 14 on 2 cores, and took CPU beside the sweep under test
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})},
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return process
        except OSError:
            time.sleep(1)
    stop_mlflow(process)
    raise AssertionError(f"mlflow {command} did not come up on port {port}")


def stop_mlflow(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@dataclass
class Postgres:
    """A PostgreSQL server on 127.0.0.1 in a temporary data directory, with a password-protected user."""

    port: int
    user: str
    password: str
    database: str
    folder: Path

    @property
    def uri(self) -> str:
        """The database URI without its password, which the driver takes from PGPASSWORD."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def env(self) -> dict[str, str]:
        return {"PGPASSWORD": self.password}


def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        raise AssertionError(f"PostgreSQL's {name} is missing: apt-get install postgresql (make test does)")
    return found[-1]


def as_postgres_user(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user that Debian's package creates."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


def start_postgres(password: str, database: str = "mlflow") -> Postgres:
    folder = Path(tempfile.mkdtemp(prefix="nerftune-pg-"))  # not under pytest's root-only folder: postgres reads it
    (folder / "pwfile").write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(folder / "pwfile", "postgres", "postgres")
    port, user = free_port(), "nerftune"
    data = folder / "data"
    initdb = [postgres_bin("initdb"), "-D", data, "-U", user, "--auth=scram-sha-256", f"--pwfile={folder / 'pwfile'}"]
    done = as_postgres_user(list(map(str, initdb)))
    assert done.returncode == 0, done.stdout + done.stderr
    server = Postgres(port, user, password, database, folder)
    pg_ctl(server, "start")
    created = subprocess.run(
        [postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database],
        env={**os.environ, **server.env},
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stderr
    return server


def pg_ctl(server: Postgres, action: str) -> None:
    """Start (on its port, 127.0.0.1 only, its socket in its folder) or stop the server; waits until done."""
    options = f"-p {server.port} -k {server.folder} -c listen_addresses=127.0.0.1"
    args = ["-l", server.folder / "server.log", "-o", options] if action == "start" else ["-m", "fast"]
    done = as_postgres_user([postgres_bin("pg_ctl"), "-D", str(server.folder / "data"), "-w", *map(str, args), action])
    assert done.returncode == 0, done.stdout + done.stderr


def stop_postgres(server: Postgres) -> None:
    pg_ctl(server, "stop")
    shutil.rmtree(server.folder, ignore_errors=True)


def start_ray_node(args: list[str], hidden: Path | None = None) -> subprocess.Popen:
    """`ray start ... --block` in its own session; with `hidden`, in a mount namespace where that folder is an empty
    one (a node that cannot see the data: needs root, as CI has)."""
    command = [str(Path(sys.executable).parent / "ray"), "start", *args, "--block", "--disable-usage-stats"]
    if hidden is not None:
        empty = tempfile.mkdtemp(prefix="nerftune-empty-")
        command = ["unshare", "-m", "sh", "-c", f'mount --bind {empty} "{hidden}" && exec "$@"', "sh", *command]
    return subprocess.Popen(
        command,
        env={**os.environ, **RAY_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_ray_node(node: subprocess.Popen) -> None:
    """As `ray stop` does for its own node only: SIGTERM to `ray start --block`, which stops what it started."""
    if node.poll() is None:
        node.terminate()
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()


def kill_raylet(node: subprocess.Popen) -> None:
    """A node dies: its raylet is killed (SIGKILL), as a machine that loses power."""
    import psutil

    raylets = [p for p in psutil.Process(node.pid).children(recursive=True) if p.name() == "raylet"]
    assert raylets, "the node has no raylet"
    for raylet in raylets:
        raylet.kill()
