"""The farm across hosts (scripts/cluster.sh): jobs per minute with one inference host against
two, the same load in one run, on the cold path (a new container per job) and the warm one.

    .venv/bin/python scripts/bench_cluster.py     (as root; starts the cluster and removes it)

The load: CLIENTS clients at once, each running JOBS_EACH synchronous jobs (`Prefer: wait`) of a
small model, one after another. Each inference host runs two jobs at once.
"""

import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.cluster.cluster import Cluster, echo_model, job_input, wait_for  # noqa: E402

CLIENTS = 8
JOBS_EACH = 6
INFERENCE_HOSTS = ("infer1", "infer2")


def jobs_per_minute(cluster: Cluster, version_id: str) -> float:
    def client_run(_: int) -> None:
        with cluster.register() as client:
            for _ in range(JOBS_EACH):
                job = client.create_job({"version_id": version_id, **job_input("x")}, wait_s=120)
                assert job["job"]["status"] == "SUCCEEDED", job["job"]["error"]

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client_run, range(CLIENTS)))
    return CLIENTS * JOBS_EACH * 60 / (time.monotonic() - started)


def one_and_two_hosts(cluster: Cluster, version_id: str) -> tuple[float, float]:
    jobs_per_minute(cluster, version_id)  # both hosts pull the image; not timed
    with cluster.only("inference", "infer1", ["infer2"]):
        one = jobs_per_minute(cluster, version_id)
    return one, jobs_per_minute(cluster, version_id)


def restart_inference_hosts(cluster: Cluster, *, warm: bool) -> None:
    os.environ["MODELFARM_CLUSTER_WARM_ENABLED"] = "true" if warm else "false"
    for host in INFERENCE_HOSTS:
        cluster.script("kill", host)
        cluster.script("start", host)
    names = [f"inference@{host}" for host in INFERENCE_HOSTS]
    wait_for(lambda: len(cluster.control.ping(destination=names, timeout=1)) == 2, "workers")


def measure() -> dict:
    cluster = Cluster()
    os.environ["MODELFARM_CLUSTER_WARM_ENABLED"] = "false"
    figures: dict[str, float] = {}
    try:  # a cluster that failed to come up is removed too
        cluster.script("up", timeout=600)
        with cluster.register() as owner:
            model = owner.create_model(f"bench-{uuid.uuid4().hex[:8]}", visibility="public")
            version = owner.wait_version(owner.push(model["id"], echo_model("bench"))["id"])
        assert version["status"] == "READY", version["error"]
        for path, warm in (("cold", False), ("warm", True)):
            if warm:
                restart_inference_hosts(cluster, warm=True)
            one, two = one_and_two_hosts(cluster, version["id"])
            figures[f"{path}_jobs_per_minute_one_host"] = round(one)
            figures[f"{path}_jobs_per_minute_two_hosts"] = round(two)
            figures[f"{path}_second_host_adds_pct"] = round((two / one - 1) * 100, 1)
    finally:
        cluster.close()
        subprocess.run([str(Cluster.SCRIPT), "down"], check=False, timeout=300)
    return figures


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name}: {value}")
