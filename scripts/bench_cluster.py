"""The farm across hosts (scripts/cluster.sh): jobs per minute with one inference host against
two, the same load in one run, on the cold path (a new container per job) and the warm one.

    .venv/bin/python scripts/bench_cluster.py     (as root; starts the cluster and removes it)

The load: CLIENTS clients of one user at once, each running JOBS_EACH synchronous jobs
(`Prefer: wait`) of a small model, one after another. Each inference host runs two jobs at once.
A host of a real farm has CPUs of its own; here the six hosts share this machine's two cores,
unless each worker host is pinned to a core of its own (MODELFARM_CLUSTER_PIN_CPUS, see
scripts/cluster.sh): both are measured, with how busy the CPUs were beside each round.
"""

import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.cluster.cluster import STEP_S, Cluster, echo_model, job_input  # noqa: E402
from tests.integration.stack import wait_for  # noqa: E402

CLIENTS = 8
JOBS_EACH = 15
INFERENCE_HOSTS = ("infer1", "infer2")


def cpu_ticks() -> tuple[int, int]:
    """This machine's CPU time so far, (busy, all), in ticks: every host shares it."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def jobs_per_minute(clients: list, version_id: str) -> tuple[float, float]:
    """The load's jobs per minute, and how busy the machine's CPUs were meanwhile (%)."""

    def client_run(client) -> None:
        for _ in range(JOBS_EACH):
            job = client.create_job({"version_id": version_id, **job_input("x")}, wait_s=120)
            assert job["job"]["status"] == "SUCCEEDED", job["job"]["error"]

    busy_before, all_before = cpu_ticks()
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client_run, clients))
    elapsed = time.monotonic() - started
    busy, total = cpu_ticks()
    return CLIENTS * JOBS_EACH * 60 / elapsed, (busy - busy_before) * 100 / (total - all_before)


def one_and_two_hosts(cluster: Cluster, clients: list, version_id: str) -> dict[str, float]:
    jobs_per_minute(clients, version_id)  # both hosts pull the image (and warm up); not timed
    with cluster.only("inference", "infer1", ["infer2"]):
        one, one_busy = jobs_per_minute(clients, version_id)
    two, two_busy = jobs_per_minute(clients, version_id)
    return {
        "jobs_per_minute_one_host": round(one), "cpu_busy_pct_one_host": round(one_busy, 1),
        "jobs_per_minute_two_hosts": round(two), "cpu_busy_pct_two_hosts": round(two_busy, 1),
        "second_host_adds_pct": round((two / one - 1) * 100, 1),
    }  # fmt: skip


def restart_inference_hosts(cluster: Cluster) -> None:
    for host in INFERENCE_HOSTS:
        cluster.script("kill", host)
        cluster.script("start", host)
    names = [f"inference@{host}" for host in INFERENCE_HOSTS]
    wait_for(
        lambda: len(cluster.control.ping(destination=names, timeout=1)) == 2, "workers", STEP_S
    )


def on_a_cluster(*, pinned: bool, paths: tuple[str, ...]) -> dict[str, float]:
    """Brings a cluster up, measures each path ("cold", then "warm"), and removes it."""
    os.environ["MODELFARM_CLUSTER_PIN_CPUS"] = "true" if pinned else "false"
    os.environ["MODELFARM_CLUSTER_WARM_ENABLED"] = "false"
    cluster, clients, figures = Cluster(), [], {}
    try:  # a cluster that failed to come up is removed too
        cluster.script("up", timeout=600)
        clients += cluster.new_user_clients(CLIENTS)
        model = clients[0].create_model(f"bench-{uuid.uuid4().hex[:8]}")
        version = clients[0].wait_version(clients[0].push(model["id"], echo_model("bench"))["id"])
        assert version["status"] == "READY", version["error"]
        for path in paths:
            if path == "warm":
                os.environ["MODELFARM_CLUSTER_WARM_ENABLED"] = "true"
                restart_inference_hosts(cluster)
            for name, value in one_and_two_hosts(cluster, clients, version["id"]).items():
                figures[f"{path}_{name}"] = value
    finally:
        for client in clients:
            client.close()
        cluster.close()
        subprocess.run([str(Cluster.SCRIPT), "down"], check=False, timeout=300)
    return figures


def measure() -> dict:
    """Each inference host with a core of its own (as hosts have), cold and warm; then all six
    hosts sharing both cores, cold."""
    pinned = on_a_cluster(pinned=True, paths=("cold", "warm"))
    shared = on_a_cluster(pinned=False, paths=("cold",))
    return pinned | {f"shared_cores_{name}": value for name, value in shared.items()}


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name}: {value}")
