"""Hang drills (issue 29): each dependency frozen (SIGSTOP by the stack's own pid files, SIGCONT
after FREEZE_S) rather than killed, while a build, a job, a sync job and a batch are under way
and 20 clients probe /health, a route that needs the frozen part and one that does not.

/health answers within its budget, naming the part; a request that needs it answers 503 with
Retry-After within seconds; the others answer as usual; after the thaw every piece of work ends
as it would have, once, with no container left behind."""

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from core.lifecycle import JobStatus, VersionStatus
from core.settings import settings
from tests.integration import stack
from tests.integration.test_outages import SLOW_PREDICT, SLOW_SETUP
from tests.utils import API_URL, Farm, inline
from workers.build.smoke import smoke_test_name

FREEZE_S = 30
HEALTH_ANSWERS_WITHIN_S = settings.health_budget_s + 0.5
NEEDS_ANSWERS_WITHIN_S = 6.0  # the request deadline, and the time to answer
PROBERS = {"health": 7, "needs": 7, "spares": 6}


@dataclass(frozen=True)
class Drill:
    service: str  # its pid file's name in the stack
    component: str  # its name in /health
    detail: str  # the 503's sentence
    # A request that needs it, and one that does not, by a user of a READY version.
    needs: Callable[[Farm, str], httpx.Response] | None
    spares: Callable[[Farm, str], httpx.Response]


def _models(farm: Farm, _version_id: str) -> httpx.Response:
    return farm.http.get("/api/models")


def _new_model(farm: Farm, _version_id: str) -> httpx.Response:  # a write: counted in Redis
    return farm.http.post("/api/models", json={"name": f"h-{uuid.uuid4().hex[:10]}"})


def _build_log(farm: Farm, version_id: str) -> httpx.Response:  # read from object storage
    return farm.http.get(f"/api/versions/{version_id}/logs")


def _api_document(farm: Farm, _version_id: str) -> httpx.Response:
    return farm.http.get("/openapi.json")


DRILLS = [
    Drill("seaweedfs", "object_storage", "Object storage is unavailable; try again shortly.",
          _build_log, _models),
    Drill("postgresql", "database", "The database is unavailable; try again shortly.",
          _models, _api_document),
    Drill("redis", "redis", "Redis is unavailable; try again shortly.", _new_model, _models),
    Drill("registry", "registry", "", None, _models),
]  # fmt: skip


@pytest.fixture(scope="module")
def slow_version(new_user_module) -> tuple[Farm, dict]:
    farm = new_user_module()
    version = farm.ready({"predict.py": SLOW_PREDICT})
    return farm, version


@dataclass
class Answer:
    probe: str
    elapsed: float
    status: int
    retry_after: str | None
    body: dict


def _probe(kind: str, request: Callable[[], httpx.Response], until: float) -> list[Answer]:
    answers = []
    while time.monotonic() < until:
        started = time.monotonic()
        response = request()
        answers.append(Answer(kind, time.monotonic() - started, response.status_code,
                              response.headers.get("Retry-After"), response.json()))  # fmt: skip
    return answers


def _probes(drill: Drill, farm: Farm, version_id: str) -> list[tuple[str, Callable]]:
    """The probes' requests, each client with a connection of its own."""

    def client() -> Farm:
        other = farm.another_client()
        other.http.timeout = httpx.Timeout(30)
        return other

    def health(_farm: Farm, _version_id: str) -> httpx.Response:
        return httpx.get(f"{API_URL}/health", timeout=30)

    def bound(request: Callable[[Farm, str], httpx.Response]) -> Callable[[], httpx.Response]:
        own = client()
        return lambda: request(own, version_id)

    needs = drill.needs or health
    return [
        (kind, bound(request))
        for kind, request in (("health", health), ("needs", needs), ("spares", drill.spares))
        for _ in range(PROBERS[kind])
    ]


@pytest.mark.parametrize("drill", DRILLS, ids=[drill.service for drill in DRILLS])
def test_a_frozen_part_answers_503_fast_and_the_work_goes_on(
    drill, slow_version, warm_model, docker_client
):
    farm, version = slow_version
    # A package of its own: an unchanged one would be reused, not built.
    build = farm.start_build({"predict.py": f"{SLOW_SETUP}# {drill.service}\n"})
    stack.wait_for_sandbox(docker_client, work=build["id"])
    job_id = farm.start_job(version["id"], b"payload")
    batch = farm.submit(warm_model[1]["id"], batch=[inline(f"item-{i}") for i in range(10)])
    assert batch.status_code == 201, batch.text
    probes = _probes(drill, farm, version["id"])
    with ThreadPoolExecutor(len(probes) + 1) as pool:
        sync = pool.submit(farm.submit, warm_model[1]["id"], {"Prefer": "wait=60"},
                           input=inline("during"))  # fmt: skip
        with stack.frozen(drill.service):
            until = time.monotonic() + FREEZE_S
            probing = [pool.submit(_probe, kind, probe, until) for kind, probe in probes]
            answers = [answer for each in probing for answer in each.result()]
        # Once the part answers again, so does the farm (within a probe's second or so).
        stack.wait_for(_healthy, "/health to answer 200 after the thaw", 60)
        sync_answer = sync.result()
    _check_answers(drill, answers)
    _check_the_work_ended(farm, build, job_id, batch.json()["job"]["id"], sync_answer,
                          docker_client)  # fmt: skip


def _healthy() -> bool:
    return httpx.get(f"{API_URL}/health", timeout=30).status_code == 200


def _check_answers(drill: Drill, answers: list[Answer]) -> None:
    health = [a for a in answers if a.probe == "health"]
    assert max(a.elapsed for a in health) <= HEALTH_ANSWERS_WITHIN_S, _slowest(health)
    named = [a for a in health if a.status == 503 and drill.component in a.body["down"]]
    assert named, f"no /health named {drill.component}"
    assert all(a.retry_after and a.retry_after.isdigit() for a in named)
    needs = [a for a in answers if a.probe == "needs"]
    assert max(a.elapsed for a in needs) <= NEEDS_ANSWERS_WITHIN_S, _slowest(needs)
    assert {a.status for a in needs} <= {200, 201, 503}, {a.status for a in needs}
    if drill.needs is not None:
        refused = [a for a in needs if a.status == 503]
        assert refused, "no request that needs the frozen part was refused"
        assert all(a.body["detail"] == drill.detail and a.retry_after for a in refused)
    spares = [a for a in answers if a.probe == "spares"]
    assert {a.status for a in spares} == {200}, [a.body for a in spares if a.status != 200][:3]
    assert max(a.elapsed for a in spares) <= NEEDS_ANSWERS_WITHIN_S, _slowest(spares)


def _slowest(answers: list[Answer]) -> str:
    slowest = max(answers, key=lambda a: a.elapsed)
    return f"{slowest.probe} took {slowest.elapsed:.1f} s: {slowest.status} {slowest.body}"


def _check_the_work_ended(
    farm: Farm, build: dict, job_id: str, batch_id: str, sync: httpx.Response, docker_client
) -> None:
    assert farm.wait_version(build["id"], timeout=400)["status"] == VersionStatus.READY
    job = farm.wait_job(job_id, timeout=400)
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    assert job["result"] == {"slept": True}
    assert [o["name"] for o in farm.outputs(job_id)].count("echo.bin") == 1
    batch = farm.wait_job(batch_id, timeout=400)
    assert batch["status"] == JobStatus.SUCCEEDED, batch["error"]
    assert (batch["items_total"], batch["items_done"], batch["items_failed"]) == (10, 10, 0)
    assert sync.status_code in (201, 503), sync.text
    if sync.status_code == 201:
        ended = farm.wait_job(sync.json()["job"]["id"], timeout=400)
        assert ended["status"] == JobStatus.SUCCEEDED, ended["error"]
    smoke = docker_client.containers.list(all=True, filters={"name": smoke_test_name(build["id"])})
    assert smoke == []
