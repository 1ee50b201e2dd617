"""The docker/ folder, which no Docker engine here can build: linted, validated against the Compose specification,
and checked for what the team setting depends on (extras, a non-root user, secrets, ports on 127.0.0.1)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

DOCKER = ROOT / "docker"
TOOLS = Path(sys.executable).parent
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
COMPOSE_FILES = sorted(DOCKER.glob("compose*.yaml"))


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end > 0 else None]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_dockerfile_passes_hadolint_without_a_finding(dockerfile):
    linted = subprocess.run(
        [TOOLS / "hadolint", "--failure-threshold", "info", dockerfile], capture_output=True, text=True
    )
    assert linted.returncode == 0 and linted.stdout == "", linted.stdout + linted.stderr


def test_compose_files_are_valid_compose_specification():
    checked = subprocess.run(
        [TOOLS / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", *COMPOSE_FILES],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(COMPOSE_FILES) == 2


def test_the_image_installs_the_extras_the_readme_installs_on_cluster_nodes():
    dockerfile = (DOCKER / "trial.Dockerfile").read_text()
    readme = section((ROOT / "README.md").read_text(), "## Teams and clusters")
    (in_image,) = re.findall(r'pip install [^\n]*"/src\[([a-z,]+)\]"', dockerfile)
    (in_readme,) = set(re.findall(r"pip install -e '\.\[([a-z,]+)\]'", readme))  # one set of extras throughout
    assert set(in_image.split(",")) == set(in_readme.split(",")) == {"server"}
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("psycopg") for requirement in extras["server"]), "MLflow's PostgreSQL driver"


def test_the_image_runs_as_the_build_arguments_user_and_builds_for_turing_to_hopper():
    dockerfile = (DOCKER / "trial.Dockerfile").read_text()
    assert 'ARG CUDA_ARCHITECTURES="75;80;86;89;90"' in dockerfile
    assert "TCNN_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES}" in dockerfile
    final_stage = dockerfile.split("\nFROM ")[-1]
    assert "ARG USER_UID=" in final_stage and "ARG USER_GID=" in final_stage
    users = re.findall(r"^USER (.+)$", final_stage, re.M)
    assert users == ["${USER_UID}:${USER_GID}"], "the last stage runs as that user, never as root"
    assert 'useradd --uid "${USER_UID}" --gid "${USER_GID}"' in final_stage


def test_the_team_stack_has_its_services_health_checks_named_volumes_and_local_ports():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "mlflow", "ray-head", "gpu-worker"}
    assert "healthcheck" in services["postgres"] and services["mlflow"]["depends_on"]["postgres"] == {
        "condition": "service_healthy"
    }
    assert {"pgdata", "mlartifacts"} <= set(compose["volumes"])
    ports = [port for service in services.values() for port in service.get("ports", [])]
    assert ports and all(port.startswith("${BIND_ADDRESS:-127.0.0.1}:") for port in ports), ports
    assert "--artifacts-destination" in " ".join(services["mlflow"]["command"]), "artifacts served, over HTTP"
    devices = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]


def test_the_database_password_is_a_secret_file_git_ignores_never_a_literal():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert compose["secrets"]["postgres_password"] == {"file": "./secrets/postgres_password"}
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        assert not any("PASSWORD" in key and not key.endswith("_FILE") for key in environment), name
        assert not re.search(r"postgresql://[^@\s]*:[^@\s]*@", str(service.get("command", ""))), "no password in a URI"
    ignored = subprocess.run(["git", "check-ignore", "-q", "docker/secrets/postgres_password"], cwd=ROOT)
    assert ignored.returncode == 0, "the password file stays out of git"
