"""The farm across hosts (scripts/cluster.sh): images travel only through the registry, the same
work is done once whichever hosts take it, and work held by a host that dies or is cut off is
taken over, with the cut-off host's late outcome refused (fencing); clients of an API host that
restarts retry without losing or doubling their work."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from core.storage import Storage
from tests.cluster.cluster import API_URL, STEP_S, echo_model, job_input, registry_layers
from tests.integration import stack
from tests.integration.stack import wait_for
from workers.build.dependencies import REUSED

BUILD_HOSTS = ["build1", "build2"]
INFERENCE_HOSTS = ["infer1", "infer2"]


def _images_of(engine, image_ref: str) -> list:
    repository = image_ref.split("@")[0]
    return [
        image
        for image in engine.images.list()
        if any(name.startswith(repository) for name in image.attrs["RepoDigests"] + image.tags)
    ]


def _push(user, package: bytes) -> dict:
    return user.push(user.create_model(f"m-{uuid.uuid4().hex[:10]}")["id"], package)


def _ready(user, package: bytes) -> dict:
    version = user.wait_version(_push(user, package)["id"], timeout=300)
    assert version["status"] == "READY", user.build_log(version["id"])
    return version


def _output(user, job: dict) -> str:
    (out,) = [o for o in user.outputs(job["id"]) if o["name"] == "out.txt"]
    return httpx.get(out["url"]).text


def _running_on(cluster, hosts: list[str], image_ref: str) -> str | None:
    """The host whose engine runs a container of the image."""
    for host in hosts:
        if any(
            c.attrs["Config"]["Image"] == image_ref for c in cluster.engine(host).containers.list()
        ):
            return host
    return None


def _host_running(cluster, version: dict) -> str:
    """The inference host running a job of the version, once one does."""
    return wait_for(
        lambda: _running_on(cluster, INFERENCE_HOSTS, version["image_ref"]), "a run", STEP_S
    )


def _took(cluster, hosts: list[str], row_id: str) -> str | None:
    """The worker host whose log shows it took the version or job."""
    return next((host for host in hosts if row_id in cluster.worker_log(host)), None)


def _built_on_both_hosts(cluster, user, packages: list[bytes]) -> list[dict]:
    """Two packages pushed at once, the first built on build1, the second on build2; the two
    versions once ended."""
    versions = []
    for host, package in zip(BUILD_HOSTS, packages, strict=True):
        (other,) = set(BUILD_HOSTS) - {host}
        with cluster.only("build", host, [other]):  # build1 stays busy with the first
            version = _push(user, package)
            wait_for(lambda: _took(cluster, [host], version["id"]), f"{host} to take one", STEP_S)  # noqa: B023
            versions.append(version)
    return [user.wait_version(v["id"], timeout=300) for v in versions]


def test_a_version_built_on_one_host_runs_on_another_pulled_by_digest(cluster, user):
    with cluster.only("build", "build1", ["build2"]):
        version = _ready(user, echo_model(uuid.uuid4().hex))
    image_ref = version["image_ref"]
    assert image_ref.startswith("198.18.0.1:5000/models/") and "@sha256:" in image_ref
    assert "self-test passed" in user.build_log(version["id"])  # on build1
    # put together in the registry: no engine made it, none has it yet
    for host in ("build1", "build2", "infer1", "infer2"):
        assert not _images_of(cluster.engine(host), image_ref)

    with cluster.only("inference", "infer2", ["infer1"]):
        job = user.create_job({"version_id": version["id"], **job_input("hello")}, wait_s=120)
    assert job["job"]["status"] == "SUCCEEDED", job["job"]["error"]
    assert _output(user, job["job"]) == "HELLO"
    pulled = _images_of(cluster.engine("infer2"), image_ref)
    assert pulled and image_ref in pulled[0].attrs["RepoDigests"]
    assert not _images_of(cluster.engine("infer1"), image_ref)


def test_the_same_new_content_on_both_build_hosts_is_built_once(cluster, user):
    # The first build's smoke test (its setup) outlasts the second's start on the other host,
    # which first pulls the base image, so that the two overlap.
    package = echo_model(uuid.uuid4().hex, setup_s=12)
    ended = _built_on_both_hosts(cluster, user, [package, package])
    assert [v["status"] for v in ended] == ["READY", "READY"]
    assert sorted(v["reused"] for v in ended) == [False, True]
    assert ended[0]["image_digest"] == ended[1]["image_digest"]
    waited = [v for v in ended if v["reused"]][0]
    log = user.build_log(waited["id"])
    assert "another build is making this exact image" in log
    # The inputs the first build's smoke test described came with its image: no second one.
    assert "smoke test" not in log
    assert waited["input_schema"] == [v for v in ended if not v["reused"]][0]["input_schema"]


def test_a_new_dependency_set_needed_on_both_build_hosts_is_built_once(cluster, user):
    module = f"mfc_{uuid.uuid4().hex[:12]}"
    cluster.publish_wheel(module, f"NAME = {module!r}\n")
    packages = [echo_model(uuid.uuid4().hex, uses=module) for _ in range(2)]
    ended = _built_on_both_hosts(cluster, user, packages)
    assert [v["status"] for v in ended] == ["READY", "READY"], ended
    logs = [user.build_log(v["id"]) for v in ended]
    assert sum(REUSED not in log for log in logs) == 1, logs
    # Both images are FROM the one dependency image: the base and the virtualenv are the same
    # blobs in both, only the model's own layers differ.
    first_layers, second_layers = (registry_layers(v["image_ref"]) for v in ended)
    shared = [a for a, b in zip(first_layers, second_layers, strict=False) if a == b]
    assert len(shared) >= 2 and first_layers[:2] == second_layers[:2]
    job = user.create_job({"version_id": ended[1]["id"], **job_input("deps")}, wait_s=120)
    assert job["job"]["status"] == "SUCCEEDED", job["job"]["error"]


def test_a_job_on_an_inference_host_that_dies_finishes_on_the_other(cluster, user):
    version = _ready(user, echo_model(uuid.uuid4().hex))
    job = user.create_job({"version_id": version["id"], **job_input("sleep 5")})["job"]
    host = _host_running(cluster, version)
    with cluster.lost(host, how="kill"):
        ended = user.wait_job(job["id"], timeout=180)
    assert ended["status"] == "SUCCEEDED", ended["error"]
    assert _output(user, ended) == "SLEEP 5"
    assert [o["name"] for o in user.outputs(job["id"])].count("out.txt") == 1
    assert cluster.row("jobs", job["id"])["attempts"] == 2
    (other,) = set(INFERENCE_HOSTS) - {host}
    assert _images_of(cluster.engine(other), version["image_ref"])


def test_a_build_on_a_build_host_that_dies_finishes_on_the_other(cluster, user):
    version = _push(user, echo_model(uuid.uuid4().hex, setup_s=8))
    host = wait_for(lambda: _took(cluster, BUILD_HOSTS, version["id"]), "a build host", STEP_S)
    with cluster.lost(host, how="kill"):
        ended = user.wait_version(version["id"], timeout=300)
    assert ended["status"] == "READY", user.build_log(version["id"])
    assert cluster.row("model_versions", version["id"])["attempts"] == 2
    (other,) = set(BUILD_HOSTS) - {host}
    assert version["id"] in cluster.worker_log(other)


def test_a_cut_off_host_late_outcome_is_refused(cluster, user):
    version = _ready(user, echo_model(uuid.uuid4().hex))
    job = user.create_job({"version_id": version["id"], **job_input("sleep 20 big")})["job"]
    host = _host_running(cluster, version)
    with cluster.lost(host, how="cut"):  # its claim expires; the other host takes over
        wait_for(lambda: cluster.row("jobs", job["id"])["attempts"] == 2, "a takeover", STEP_S)
    # Back on the network while attempt 2 still runs, the cut-off worker ends attempt 1 and
    # tries to write its outcome: the fencing token (the attempt) refuses it.
    late = wait_for(lambda: _late_outcome(cluster, host, job["id"]), "the late outcome", STEP_S)
    assert late["status"] == "SUCCEEDED"  # what the cut-off worker's own run came to
    assert cluster.row("jobs", job["id"])["status"] == "RUNNING"  # attempt 2's, untouched
    ended = user.wait_job(job["id"], timeout=180)
    assert ended["status"] == "SUCCEEDED", ended["error"]
    assert cluster.row("jobs", job["id"])["attempts"] == 2
    outputs = {o["name"]: o["url"] for o in user.outputs(job["id"])}
    assert {"out.txt", "big.bin"} <= set(outputs)
    # Each attempt stores its files apart: the late one's never replace the winner's.
    assert f"/jobs/{job['id']}/outputs/2/" in outputs["big.bin"]
    assert httpx.get(outputs["big.bin"]).content == bytes(100_000)


def _late_outcome(cluster, host: str, job_id: str) -> dict | None:
    """The host's log entry of an outcome of the job that was not written."""
    for entry in cluster.worker_entries(host):
        if (entry.get("event"), entry.get("job_id"), entry.get("finished")) == (
            "job ended", job_id, False,
        ):  # fmt: skip
            return entry
    return None


def test_clients_waiting_on_a_restarted_api_host_can_retry_and_lose_nothing(cluster, user):
    version = _ready(user, echo_model(uuid.uuid4().hex))
    body, key = {"version_id": version["id"], **job_input("sleep 4")}, uuid.uuid4().hex
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(user.create_job, body, wait_s=60, idempotency_key=key)
        _host_running(cluster, version)
        # The connection is gone with the API's process: an error the client can retry.
        with cluster.lost("api", how="kill"), pytest.raises(httpx.TransportError):
            waiting.result(timeout=60)
    wait_for(lambda: _answers(f"{API_URL}/health"), "the API back", STEP_S)
    retried = user.create_job(body, wait_s=60, idempotency_key=key)["job"]
    assert retried["status"] == "SUCCEEDED", retried["error"]
    assert _output(user, retried) == "SLEEP 4"
    assert [job["id"] for job in user.jobs()] == [retried["id"]]  # one job, not two


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_the_api_host_has_no_engine_and_reports_the_shared_services(cluster):
    health = httpx.get(f"{API_URL}/health", timeout=30)
    assert health.status_code == 200, health.text
    assert set(health.json()["checks"]) == {"database", "redis", "object_storage", "registry"}


def test_the_one_machine_stack_beside_the_cluster_keeps_working(cluster):
    """The cluster's services share this machine with the local stack's: none takes the
    other's ports or local sockets (SeaweedFS names its sockets by port)."""
    storage, key = Storage(), f"tests/cluster-neighbour-{uuid.uuid4().hex}"
    storage.put_bytes(key, b"still mine")
    try:
        assert storage.get_bytes(key) == b"still mine"
    finally:
        storage.delete(key)
    trouble = stack.api_trouble()
    assert trouble is None, trouble
