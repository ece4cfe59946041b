"""Fixtures for tests against the live local stack (scripts/test.sh starts it).

Every user, model, image and container a test creates is tracked and removed at teardown.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
from sqlalchemy import delete, select

from core.client import API_URL, Farm, make_zip
from core.db import SessionLocal
from core.models import Job, Model, ModelVersion, User
from core.registry import Registry
from core.settings import settings
from core.storage import Storage, job_prefix

__all__ = ["API_URL", "Farm", "make_zip"]

ROOT_DIR = str(Path(__file__).resolve().parent.parent)


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
        email = f"test-{uuid.uuid4().hex[:12]}@example.com"
        http = httpx.Client(base_url=API_URL, timeout=60)
        registered = http.post(
            "/api/users/register", json={"email": email, "password": "s3cret-pass"}
        )
        assert registered.status_code == 201, registered.text
        login = http.post("/api/users/login", data={"username": email, "password": "s3cret-pass"})
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        farm = Farm(http, email, registered.json()["id"])
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


def remove_user(user_id: uuid.UUID, storage: Storage, client: docker.DockerClient) -> None:
    registry = Registry()
    with SessionLocal() as session:
        models = session.scalars(select(Model).where(Model.owner_id == user_id)).all()
        versions = session.scalars(
            select(ModelVersion).where(ModelVersion.model_id.in_([m.id for m in models]))
        ).all()
        jobs = session.scalars(select(Job).where(Job.owner_id == user_id)).all()
        for version in versions:
            for key in (version.package_key, version.build_log_key):
                storage.delete(key)
        for job in jobs:
            storage.delete_prefix(job_prefix(job.id))
        for model in models:
            _remove_images(f"models/{model.id}", registry, client)
        session.execute(delete(User).where(User.id == user_id))
        session.commit()


def _remove_images(repository: str, registry: Registry, client: docker.DockerClient) -> None:
    for image in client.images.list(name=f"{settings.registry}/{repository}"):
        client.images.remove(image.id, force=True)
    tags = httpx.get(f"{registry.base_url}/v2/{repository}/tags/list").json().get("tags") or []
    for tag in tags:
        digest = registry.manifest_digest(repository, tag)
        if digest:
            httpx.delete(f"{registry.base_url}/v2/{repository}/manifests/{digest}")
