"""Webhooks on the real stack: a receiver on 127.0.0.1 (scripts/test.sh allows loopback and
shortens the waits between attempts) checks every signature with the standardwebhooks library,
answers 500 before it accepts, and is never sent another user's work. Destinations that are not
allowed are refused on an API process of its own that keeps the default (no loopback)."""

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import delete, update
from standardwebhooks import Webhook, WebhookVerificationError

from core.db import SessionLocal
from core.lifecycle import utcnow
from core.models import Job, WebhookAttempt
from core.settings import settings
from tests.integration.stack import api_process, wait_for
from tests.utils import API_URL, Farm, inline, make_zip
from workers.webhooks import UNREACHABLE

ECHO = "def predict(input_path, output_dir):\n    return {'echo': open(input_path).read()}\n"
STRICT_PORT = 8012


class Receiver(ThreadingHTTPServer):
    """Records each POST (path, headers, body); answers 500 to a message's first `fail_first`
    attempts, then 204."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.fail_first = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def messages(self, type_: str) -> list[tuple[dict[str, str], dict]]:
        with self.lock:
            found = [(headers, json.loads(body)) for _, headers, body in self.received]
        return [(headers, body) for headers, body in found if body["type"] == type_]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        with self.server.lock:
            self.server.received.append((self.path, headers, body))
            tries = sum(1 for _, seen, _ in self.server.received
                        if seen["webhook-id"] == headers["webhook-id"])  # fmt: skip
        self.send_response(500 if tries <= self.server.fail_first else 204)
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


@contextlib.contextmanager
def _serving() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with _serving() as server:
        yield server


@pytest.fixture
def other_receiver() -> Iterator[Receiver]:
    with _serving() as server:
        yield server


def _secret(farm: Farm) -> str:
    response = farm.http.get("/api/users/me/webhook-secret")
    assert response.status_code == 200, response.text
    return response.json()["secret"]


def _verified(secret: str, headers: dict[str, str], body: dict) -> dict:
    return Webhook(secret).verify(json.dumps(body), headers)


def _job(farm: Farm, version_id: str, receiver: Receiver, **body) -> dict:
    response = farm.submit(version_id, input=inline("hi"), webhook=f"{receiver.url}/hooks?to=me",
                           **body)  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()["job"]


def test_a_job_webhook_is_signed_sent_at_start_and_end_and_retried_until_accepted(
    new_user, receiver
):
    farm = new_user()
    secret = _secret(farm)
    version = farm.build({"predict.py": ECHO})
    receiver.fail_first = 2
    job = _job(farm, version["id"], receiver, webhook_events=["start", "completed"])
    assert job["webhook_events"] == ["completed", "start"]
    ended = farm.wait_job(job["id"])
    assert ended["status"] == "SUCCEEDED"  # whatever the receiver answers
    completed = wait_for(lambda: len(receiver.messages("job.completed")) >= 3 or None,
                         "three attempts at the completed message", timeout=60)  # fmt: skip
    completed = receiver.messages("job.completed")
    assert len({headers["webhook-id"] for headers, _ in completed}) == 1  # stable across retries
    for headers, body in completed:
        assert _verified(secret, headers, body)["data"]["status"] == "SUCCEEDED"
        assert body["data"]["id"] == job["id"] and body["data"]["result"] == {"echo": "hi"}
    (start,) = receiver.messages("job.start")[:1]
    assert _verified(secret, *start)["data"]["id"] == job["id"]
    with pytest.raises(WebhookVerificationError):  # another secret does not verify it
        _verified(_secret(new_user()), *completed[-1])
    assert receiver.received[0][0] == "/hooks?to=me"
    attempts = wait_for(lambda: _attempts(farm, job["id"], "completed", 3), "3 recorded attempts")
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 500), (2, 500), (3, 204)]
    assert attempts[0]["error"] == "The receiver answered 500." and attempts[2]["error"] is None
    time.sleep(3)  # the longest test wait between attempts: no attempt after the accepted one
    assert len(receiver.messages("job.completed")) == 3


def _attempts(farm: Farm, job_id: str, event: str, count: int) -> list[dict] | None:
    response = farm.http.get(f"/api/jobs/{job_id}/webhooks")
    assert response.status_code == 200, response.text
    found = [attempt for attempt in response.json() if attempt["event"] == event]
    return found if len(found) >= count else None


def test_a_build_webhook_tells_the_version_is_ready(new_user, receiver):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], _zip(ECHO + "# build hook\n"))
    response = farm.http.post(f"/api/versions/{version['id']}/build",
                              json={"webhook": receiver.url})  # fmt: skip
    assert response.status_code == 202, response.text
    assert farm.wait_version(version["id"])["status"] == "READY"
    ((headers, body),) = wait_for(lambda: receiver.messages("version.completed") or None,
                                  "the build's webhook", timeout=60)  # fmt: skip
    data = _verified(_secret(farm), headers, body)["data"]
    assert (data["id"], data["status"]) == (version["id"], "READY")
    assert receiver.messages("version.start") == []  # not asked for


def _zip(predict: str) -> bytes:
    return make_zip({"predict.py": predict})


def test_webhooks_reach_only_their_own_users_receiver_and_the_secret_rotates(
    new_user, receiver, other_receiver
):
    alice, bob = new_user(), new_user()
    alice_version, bob_version = (farm.build({"predict.py": ECHO}) for farm in (alice, bob))
    before = _secret(alice)
    assert _secret(alice) == before
    rotated = alice.http.post("/api/users/me/webhook-secret")
    assert rotated.status_code == 200 and rotated.json()["secret"] != before
    alice_job = _job(alice, alice_version["id"], receiver)
    bob_job = _job(bob, bob_version["id"], other_receiver)
    for farm, job in ((alice, alice_job), (bob, bob_job)):
        farm.wait_job(job["id"])
    for each in (receiver, other_receiver):
        wait_for(lambda r=each: r.messages("job.completed") or None, "each webhook", timeout=60)
    assert {body["data"]["id"] for _, body in receiver.messages("job.completed")} == {
        alice_job["id"]
    }
    assert _verified(rotated.json()["secret"], *receiver.messages("job.completed")[0])
    assert bob.http.get(f"/api/jobs/{alice_job['id']}/webhooks").status_code == 404
    token = alice.create_token("hooks", scopes=["read", "build", "run"])["token"]
    as_token = httpx.get(f"{API_URL}/api/users/me/webhook-secret",
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert as_token.status_code == 403 and "login" in as_token.json()["detail"]


def test_a_completed_message_that_was_never_sent_is_sent_by_the_reconciler(new_user, receiver):
    farm = new_user()
    version = farm.build({"predict.py": ECHO})
    job = _job(farm, version["id"], receiver)
    farm.wait_job(job["id"])
    wait_for(lambda: receiver.messages("job.completed") or None, "the first delivery", timeout=60)
    # As if the worker had died between the job's end and queuing the message: no attempt,
    # and the end a while ago.
    with SessionLocal() as session, session.begin():
        session.execute(delete(WebhookAttempt).where(WebhookAttempt.job_id == job["id"]))
        session.execute(update(Job).where(Job.id == job["id"])
                        .values(finished_at=utcnow() - timedelta(minutes=2)))  # fmt: skip
    patience = settings.reconcile_interval_s * 4 + 30
    wait_for(lambda: len(receiver.messages("job.completed")) >= 2 or None,
             "the reconciler's delivery", timeout=patience)  # fmt: skip
    first, again = receiver.messages("job.completed")[:2]
    assert first[0]["webhook-id"] == again[0]["webhook-id"]


@pytest.fixture(scope="module")
def strict_api(tmp_path_factory) -> Iterator[str]:
    """The API as a process of its own with the default: no loopback or private receivers."""
    log = tmp_path_factory.mktemp("strict") / "api.log"
    with api_process(STRICT_PORT, log, WEBHOOK_ALLOW_PRIVATE="false") as url:
        yield url


@pytest.fixture(scope="module")
def ready(new_user_module) -> tuple[Farm, dict]:
    farm = new_user_module()
    return farm, farm.build({"predict.py": ECHO})


@pytest.mark.parametrize(
    ("webhook", "because"),
    [
        ("http://127.0.0.1:9/hook", "resolves to 127.0.0.1, a loopback or private address"),
        ("http://localhost:9/hook", "a loopback or private address"),
        ("http://169.254.169.254/latest/meta-data/", "link-local address"),
        ("http://[::ffff:169.254.169.254]/", "link-local address"),
        ("http://0.0.0.0:9/", "not an address of one host"),
        ("http://user:secret@example.invalid/", "no credentials"),
        ("http://nothing-here.invalid/", "cannot be resolved"),
    ],
)
def test_destinations_that_are_not_public_are_refused(ready, strict_api, webhook, because):
    farm, version = ready
    jobs_before = len(farm.jobs())
    with httpx.Client(
        base_url=strict_api, headers={"Authorization": f"Bearer {farm.token}"}
    ) as api:
        response = api.post("/api/jobs", json={"version_id": version["id"], "input": inline("x"),
                                               "webhook": webhook})  # fmt: skip
        assert response.status_code == 422, response.text
        assert "webhook: " in response.json()["detail"] and because in response.text
        model = farm.create_model()["id"]
        pending = farm.new_version(model, _zip(ECHO))
        build = api.post(f"/api/versions/{pending['id']}/build", json={"webhook": webhook})
        assert build.status_code == 422 and because in build.text
    assert len(farm.jobs()) == jobs_before and farm.version(pending["id"])["status"] == "UPLOADING"


def test_a_webhook_that_is_not_an_http_url_is_refused(ready):
    farm, version = ready
    for webhook in ("ftp://example.com/", "javascript:alert(1)", "http://a b/", "x" * 3000):
        response = farm.submit(version["id"], input=inline("x"), webhook=webhook)
        assert response.status_code == 422, response.text
    response = farm.submit(version["id"], input=inline("x"), webhook="http://127.0.0.1:9/",
                           webhook_events=["finished"])  # fmt: skip
    assert response.status_code == 422 and "webhook_events" in response.text


def test_an_unreachable_receiver_s_error_does_not_tell_a_closed_port_from_a_silent_one(ready):
    farm, version = ready
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]  # nothing listens once it is closed
    with socket.socket() as silent:  # connections wait in its backlog, never answered
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        jobs = [
            farm.submit(version["id"], input=inline("x"), webhook=f"http://127.0.0.1:{port}/",
                        webhook_events=["completed"]).json()["job"]
            for port in (closed_port, silent.getsockname()[1])
        ]  # fmt: skip
        first = [wait_for(lambda job=job: _attempts(farm, job["id"], "completed", 1),
                          "the first attempt recorded", 60)[0] for job in jobs]  # fmt: skip
    assert [(a["status_code"], a["error"]) for a in first] == [(None, UNREACHABLE)] * 2


@pytest.mark.parametrize(
    "where",
    ["127.0.0.1:8000", "localhost:8333", "127.0.0.1:5000", "127.0.0.1:6379", "127.0.0.1:5432",
     "127.0.0.1:8888", "127.0.0.1:9333", "127.0.0.1:9471", "[::ffff:127.0.0.1]:8888",
     "[2002:7f00:1::]:8000"],
)  # fmt: skip
def test_the_farms_own_services_are_refused_though_private_targets_are_allowed(ready, where):
    """The test stack allows private targets (MODELFARM_WEBHOOK_ALLOW_PRIVATE): the farm's API,
    object store and its filer and master, registry, Redis, database and metrics ports stay
    refused (core/endpoints.py), before any connection."""
    farm, version = ready
    jobs_before = len(farm.jobs())
    response = farm.http.post("/api/jobs", json={
        "version_id": version["id"], "input": inline("x"), "webhook": f"http://{where}/hook",
    })  # fmt: skip
    assert response.status_code == 422, response.text
    assert "the farm's own services listens on port" in response.text
    assert len(farm.jobs()) == jobs_before
