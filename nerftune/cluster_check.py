"""Before a sweep starts, the Ray it will run on can run its trials (Ray would wait for ever on a trial that no node
can hold). On this machine alone: it has the CPUs and GPUs a trial asks for, and no custom resource is asked. On a
Ray cluster (`--address`): the cluster answers, some node has everything a trial asks for, and every such node runs
nerftune and sees the datasets and the storage folder at the same paths (a small Ray task of nerftune's on each node
looks). Each problem is one `InputError` line, and nothing has started.
"""

from __future__ import annotations

import os
import socket

from nerftune.errors import InputError
from nerftune.machine import cpu_count
from nerftune.plan import trial_resources
from nerftune.preflight import Prepared

CONNECT_TIMEOUT_S = 5
RAY_NAMES = {"cpu": "CPU", "gpu": "GPU"}  # how Ray's nodes name what a trial's resources call cpu and gpu
NERFTUNE_ON_EVERY_NODE = "install this machine's nerftune on every node (see the README's Teams and clusters)"
SHARED_PATH_HINT = "put it on a file system every node mounts at the same path (see the README's Teams and clusters)"


def check_machine(prepared: Prepared) -> None:
    """A sweep on a Ray of its own: one trial's resources fit in this machine."""
    spec_path, wanted = prepared.spec_path, trial_resources(prepared, on_cluster=False)
    if prepared.spec.resources.custom:
        raise InputError(
            spec_path,
            "resources.custom",
            f"{', '.join(prepared.spec.resources.custom)}: only the nodes of a Ray cluster started with them have "
            "custom resources, and this sweep runs on this machine alone",
            "remove resources.custom, or give --address of the cluster that has them",
        )
    cpus, gpus = cpu_count(), len(prepared.gpus)
    if wanted["cpu"] > cpus:
        raise InputError(
            spec_path,
            "resources.cpu",
            f"each trial asks for {wanted['cpu']:g} CPUs, and this machine has {cpus}",
            f"ask for at most {cpus}, or give --address of a Ray cluster with bigger nodes",
        )
    if wanted.get("gpu", 0) > gpus:
        raise InputError(
            spec_path,
            "resources.gpu",
            f"each trial asks for {wanted['gpu']:g} GPUs, and this machine has {gpus}",
            f"ask for at most {gpus}; a share such as 0.5 puts two trials on each GPU",
        )


def check_cluster(prepared: Prepared, address: str) -> None:
    import ray

    _check_reachable(address)
    try:
        ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=False)
    except (ConnectionError, RuntimeError) as error:
        raise InputError(
            "command line",
            "--address",
            f"cannot join the Ray cluster at {address} ({error})",
            "start one with `ray start --head`, or give its address",
        ) from None
    try:
        wanted = {RAY_NAMES.get(k, k): v for k, v in trial_resources(prepared, on_cluster=True).items() if v}
        nodes = [node for node in ray.nodes() if node["Alive"]]
        able = [node for node in nodes if all(node["Resources"].get(k, 0) >= v for k, v in wanted.items())]
        if not able:
            have = "; ".join(_resources_text(node["Resources"]) for node in nodes)
            raise InputError(
                prepared.spec_path,
                "resources",
                f"no node of the cluster at {address} has what a trial asks for ({_resources_text(wanted)}); "
                f"its nodes have: {have}",
                "ask for less, or start a node with it (`ray start --resources '{\"name\": 1}'`, --num-gpus)",
            )
        _check_paths_seen(prepared, able)
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """A cluster address that nothing answers at (Ray itself would retry for minutes)."""
    if address == "auto":
        return  # Ray looks for a cluster started on this machine, and says at once if there is none
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        raise InputError(
            "command line",
            "--address",
            f"no Ray cluster answers at {address} ({error})",
            "start one with `ray start --head` and give its host:port (6379 by default), or `auto` on its head node",
        ) from None


def _check_paths_seen(prepared: Prepared, nodes: list[dict]) -> None:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # a dataset's transforms.json, not its folder: a node may have an empty folder of that name (an unmounted share)
    readable = [str(scene.data_dir / "transforms.json") for scene in prepared.scenes.values()]
    readable += list(prepared.init_sources.values())
    storage = str(prepared.storage)
    look = ray.remote(num_cpus=0)(_unseen)
    asked = [
        look.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote(
            readable, storage
        )
        for node in nodes
    ]
    for node, answer in zip(nodes, asked):
        where = f"node {node['NodeManagerHostname']} ({node['NodeID'][:8]}) of the cluster"
        try:
            unseen = ray.get(answer, timeout=120)
        except ray.exceptions.RayTaskError as error:  # the look is nerftune's own function: the node cannot import it
            cause = str(error).strip().splitlines()[-1]
            raise InputError(
                "command line", "--address", f"{where} cannot run nerftune ({cause})", NERFTUNE_ON_EVERY_NODE
            ) from None
        if unseen:
            if unseen[0] == storage:
                raise InputError("command line", "--storage", f"{where} cannot write {storage}", SHARED_PATH_HINT)
            raise InputError(prepared.spec_path, "data", f"{where} cannot see {unseen[0]}", SHARED_PATH_HINT)


def _unseen(readable: list[str], storage: str) -> list[str]:
    """On a node: the paths it cannot see, and the storage folder if it cannot write there."""
    missing = [path for path in readable if not os.path.exists(path)]
    if not os.access(storage, os.W_OK):
        missing.insert(0, storage)
    return missing


def _resources_text(resources: dict[str, float]) -> str:
    """A node's (or a trial's) resources as people read them: `2 CPU, 1 GPU, 1 trial_node`, no Ray internals."""
    shown = {
        k: v for k, v in resources.items() if not k.startswith("node:") and k not in ("memory", "object_store_memory")
    }
    return ", ".join(f"{v:g} {k}" for k, v in shown.items()) or "nothing"
