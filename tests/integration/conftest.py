"""Fixtures for tests against the live local stack (scripts/test.sh starts it).

Every user, model, image and container a test creates is tracked and removed at teardown.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from core.lifecycle import VersionStatus
from core.storage import Storage
from tests.integration import stack
from tests.utils import API_URL, Farm, make_zip, remove_user

WARM_MODEL = Path(__file__).parent / "models" / "warm"


@pytest.fixture(scope="session", autouse=True)
def api_is_up() -> None:
    """Every test here needs the local stack's API: when it is not answering, say why once,
    instead of each test failing to connect."""
    if trouble := stack.api_trouble():
        pytest.exit(trouble, returncode=1)


@pytest.fixture(scope="session")
def storage() -> Storage:
    return Storage()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env(timeout=300)
    yield client
    client.close()


@pytest.fixture
def anonymous() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=API_URL, timeout=60) as http:
        yield http


def _user_factory(storage: Storage, docker_client: docker.DockerClient) -> Iterator:
    """Makes logged-in users; removes them and all they created at teardown."""
    made: list[Farm] = []

    def make() -> Farm:
        farm = Farm.register()
        made.append(farm)
        return farm

    yield make
    for farm in made:
        farm.http.close()
        remove_user(uuid.UUID(farm.user_id), storage, docker_client)


@pytest.fixture
def new_user(storage, docker_client) -> Iterator:
    yield from _user_factory(storage, docker_client)


@pytest.fixture(scope="module")
def new_user_module(storage, docker_client) -> Iterator:
    """new_user for fixtures shared by a module, such as one built image."""
    yield from _user_factory(storage, docker_client)


@pytest.fixture(scope="module")
def warm_model(new_user_module):
    """One READY public version of the warm test model (models/warm), and its owner."""
    owner = new_user_module()
    files = {path.name: path.read_bytes() for path in WARM_MODEL.iterdir() if path.is_file()}
    model = owner.create_model(visibility="public")
    version = owner.build(make_zip(files), model_id=model["id"])
    assert version["status"] == VersionStatus.READY, version["error"]
    return owner, version


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (tests/integration/browser.py), one per module."""
    from tests.integration.browser import chromium

    with chromium() as driver:
        yield driver
