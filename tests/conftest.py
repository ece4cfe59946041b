"""Fixtures for tests against the live local stack (scripts/test.sh starts it).

Every user, model, image and container a test creates is tracked and removed at teardown.
"""

import io
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
from sqlalchemy import delete, select

from core.db import SessionLocal
from core.models import Job, Model, ModelVersion, User
from core.registry import Registry
from core.settings import settings
from core.storage import Storage, job_prefix

API_URL = f"http://{settings.api_host}:{settings.api_port}"
ROOT_DIR = str(Path(__file__).resolve().parent.parent)
TERMINAL_VERSION = {"READY", "FAILED"}
TERMINAL_JOB = {"SUCCEEDED", "FAILED"}


def make_zip(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


class Farm:
    """An API client logged in as one user, with the verbs the tests need."""

    def __init__(self, http: httpx.Client, email: str, user_id: str) -> None:
        self.http, self.email, self.user_id = http, email, user_id

    def create_model(self, name: str | None = None, **fields) -> dict:
        body = {"name": name or f"m-{uuid.uuid4().hex[:10]}", **fields}
        response = self.http.post("/api/models", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def new_version(self, model_id: str, package: bytes | None) -> dict:
        response = self.http.post(f"/api/models/{model_id}/versions")
        assert response.status_code == 201, response.text
        created = response.json()
        if package is not None:
            upload = httpx.put(created["upload_url"], content=package)
            assert upload.status_code == 200, upload.text
        return created["version"]

    def build(self, files: dict[str, str | bytes] | bytes, model_id: str | None = None) -> dict:
        """Uploads a package, builds it, and returns the version once READY or FAILED."""
        package = files if isinstance(files, bytes) else make_zip(files)
        model_id = model_id or self.create_model()["id"]
        version = self.new_version(model_id, package)
        response = self.http.post(f"/api/versions/{version['id']}/build")
        assert response.status_code == 202, response.text
        return self.wait(f"/api/versions/{version['id']}", TERMINAL_VERSION, timeout=600)

    def run(self, version_id: str, data: bytes, timeout: float = 300) -> dict:
        response = self.http.post("/api/jobs", json={"version_id": version_id})
        assert response.status_code == 201, response.text
        created = response.json()
        assert httpx.put(created["upload_url"], content=data).status_code == 200
        job_id = created["job"]["id"]
        response = self.http.post(f"/api/jobs/{job_id}/run")
        assert response.status_code == 202, response.text
        return self.wait(f"/api/jobs/{job_id}", TERMINAL_JOB, timeout=timeout)

    def outputs(self, job_id: str) -> dict[str, bytes]:
        response = self.http.get(f"/api/jobs/{job_id}/outputs")
        assert response.status_code == 200, response.text
        return {o["name"]: httpx.get(o["url"]).content for o in response.json()["outputs"]}

    def wait(self, path: str, terminal: set[str], timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            body = self.http.get(path).json()
            if body["status"] in terminal:
                return body
            assert time.monotonic() < deadline, f"{path} still {body['status']} after {timeout} s"
            time.sleep(0.3)


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
