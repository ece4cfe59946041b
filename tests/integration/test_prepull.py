"""Pre-pull (MODELFARM_PREPULL) on the real stack: with it on, the inference host has a
version's image as soon as the version is READY, before any job asks for it; without it, the
image reaches the host with the first job."""

import uuid

import pytest
import redis
from docker.errors import ImageNotFound

from core.events import VERSION_READY_CHANNEL
from core.lifecycle import VersionStatus
from core.settings import settings
from tests.integration import stack
from tests.integration.stack import LOGS_DIR, wait_for

ECHO = "def predict(input_path, output_dir):\n    return {'echo': open(input_path).read()}\n"


def _present(docker_client, image_ref: str) -> bool:
    try:
        docker_client.images.get(image_ref)
    except ImageNotFound:
        return False
    return True


def _pre_pulled(image_ref: str) -> bool:
    lines = (LOGS_DIR / "inference-worker.log").read_text().splitlines()
    return any('"pre-pulled"' in line and image_ref in line for line in lines)


def _listened() -> bool:
    [(_channel, listeners)] = redis.Redis.from_url(settings.redis_url).pubsub_numsub(
        VERSION_READY_CHANNEL
    )
    return listeners > 0


def _restart_inference_worker() -> None:
    stack.kill("inference-worker")
    stack.up()


@pytest.fixture
def prepulling(monkeypatch):
    """The inference worker restarted with MODELFARM_PREPULL=true, and back without it after."""
    monkeypatch.setenv("MODELFARM_PREPULL", "true")
    _restart_inference_worker()
    # up.sh waits for the API only: a version READY before the worker listens is not pre-pulled.
    wait_for(_listened, "the inference worker listening for READY versions", 60)
    yield
    monkeypatch.delenv("MODELFARM_PREPULL")
    _restart_inference_worker()


def _unique_model(farm) -> dict:
    version = farm.build({"predict.py": ECHO + f"# {uuid.uuid4()}\n"})  # an image of its own
    assert version["status"] == VersionStatus.READY, version["error"]
    return version


def test_without_pre_pull_the_image_comes_with_the_first_job(new_user, docker_client):
    farm = new_user()
    version = _unique_model(farm)
    assert not _present(docker_client, version["image_ref"])
    assert farm.run(version["id"], b"hi")["result"] == {"echo": "hi"}
    assert _present(docker_client, version["image_ref"])


def test_with_pre_pull_the_image_is_there_before_the_first_job(new_user, docker_client,
                                                               prepulling):  # fmt: skip
    farm = new_user()
    version = _unique_model(farm)
    wait_for(lambda: _pre_pulled(version["image_ref"]), "the image pre-pulled", 120)
    assert _present(docker_client, version["image_ref"])
    assert farm.run(version["id"], b"hi")["result"] == {"echo": "hi"}
