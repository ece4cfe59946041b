"""Test helpers: the SDK's client (modelfarm.Client) as one test user, with shortcuts whose
verbs assert (a failure is a bug); deterministic ZIPs; the clean-up of what a test user made.
Used by the tests and the benchmarks."""

import base64
import io
import secrets
import subprocess
import uuid
import zipfile
from pathlib import Path

import docker
import httpx
from sqlalchemy import select

from core import removal
from core.db import SessionLocal
from core.lifecycle import JOB, VERSION
from core.models import Model, User
from core.registry import Registry, engine_name, model_repository
from core.settings import settings
from core.storage import Storage
from modelfarm import Client, transfer
from workers.run import sandbox
from workers.run.sandbox import USER_LABEL

ROOT = Path(__file__).resolve().parent.parent
API_URL = f"http://{settings.api_host}:{settings.api_port}"
PASSWORD = "s3cret-pass"


def from_own_address() -> httpx.HTTPTransport:
    """A transport whose requests come from an address of their own in 127.0.0.0/8 (all of it
    is this machine's loopback), as distinct clients would: the API throttles by address."""
    octets = secrets.token_bytes(3)
    return httpx.HTTPTransport(local_address=f"127.{octets[0]}.{octets[1]}.{max(octets[2], 2)}")


def make_zip(files: dict[str, str | bytes], *, again: bool = False) -> bytes:
    """A ZIP of files; the same files always give the same bytes (fixed timestamps). `again`:
    the same files zipped another way (other timestamps, the other order, stored)."""
    when, order = ((2024, 5, 6, 7, 8, 10), reversed) if again else ((2020, 1, 1, 0, 0, 0), list)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED if again else zipfile.ZIP_DEFLATED) as zf:
        for name, content in order(list(files.items())):
            zf.writestr(zipfile.ZipInfo(name, date_time=when), content)
    return buffer.getvalue()


def put_zeros(url: str, size: int) -> httpx.Response:
    """PUTs `size` zero bytes to a presigned URL, streamed: a package at a limit of gigabytes
    costs the test no memory."""

    def chunks():
        left = size
        while left:
            yield bytes(min(left, 16 * 1024**2))
            left -= min(left, 16 * 1024**2)

    return httpx.put(url, content=chunks(), headers={"Content-Length": str(size)}, timeout=300)


def inline(data: str, name: str = "input.txt") -> dict:
    """An input sent inline in a job's JSON."""
    return {"name": name, "data": base64.b64encode(data.encode()).decode()}


class Farm(Client):
    """The SDK's client logged in as one user, from an address of its own."""

    def __init__(self, token: str, email: str, user_id: str) -> None:
        super().__init__(API_URL, token, transport=from_own_address())
        self.token, self.email, self.user_id = token, email, user_id

    @classmethod
    def register(cls, email: str | None = None, password: str = PASSWORD) -> "Farm":
        email = email or f"test-{uuid.uuid4().hex[:12]}@example.com"
        with Client(API_URL, transport=from_own_address()) as anonymous:
            user_id = anonymous.register(email, password)["id"]
            token = anonymous.login(email, password)
        return cls(token, email, user_id)

    def another_client(self) -> "Farm":
        """The same user through a connection of its own, from an address of its own."""
        return Farm(self.token, self.email, self.user_id)

    def create_model(self, name: str | None = None, **fields) -> dict:
        return super().create_model(name or f"m-{uuid.uuid4().hex[:10]}", **fields)

    def new_version(
        self, model_id: str, package: bytes | Path | None, *, in_parts: bool = False,
        by_content: transfer.ByContent = (),
    ) -> dict:  # fmt: skip
        """A new version, its package uploaded (bytes, or a file streamed from disk; in parts,
        as `modelfarm push` sends a big one), after its files sent by content."""
        response = self.http.post(f"/api/models/{model_id}/versions")
        assert response.status_code == 201, response.text
        created = response.json()
        if by_content:
            transfer.send_by_content(self.call, created["version"]["id"], by_content, None)
        if in_parts:
            assert isinstance(package, Path)
            transfer.upload_in_parts(self.call, created["version"]["id"], package, None)
        elif isinstance(package, Path):
            with package.open("rb") as stream:
                upload = httpx.put(created["upload_url"], content=stream, timeout=300)
            assert upload.status_code == 200, upload.text
        elif package is not None:
            upload = httpx.put(created["upload_url"], content=package)
            assert upload.status_code == 200, upload.text
        return created["version"]

    def start_build(self, files: dict[str, str | bytes] | bytes) -> dict:
        """Uploads a package to a new model and starts its build; returns the version."""
        package = files if isinstance(files, bytes) else make_zip(files)
        version = self.new_version(self.create_model()["id"], package)
        response = self.http.post(f"/api/versions/{version['id']}/build")
        assert response.status_code == 202, response.text
        return version

    def build(self, files: dict[str, str | bytes] | bytes, model_id: str | None = None) -> dict:
        """Uploads a package, builds it, and returns the version once READY or FAILED."""
        package = files if isinstance(files, bytes) else make_zip(files)
        version = self.new_version(model_id or self.create_model()["id"], package)
        response = self.http.post(f"/api/versions/{version['id']}/build")
        assert response.status_code == 202, response.text
        return self.wait_version(version["id"])

    def ready(self, files: dict[str, str | bytes] | bytes, model_id: str | None = None) -> dict:
        """build(), for a package that must build: the READY version."""
        version = self.build(files, model_id)
        assert version["status"] == VERSION.succeeded, version["error"]
        return version

    def start_job(self, version_id: str, data: bytes) -> str:
        """Creates a job, uploads its input and starts it; returns the job id."""
        response = self.http.post("/api/jobs", json={"version_id": version_id})
        assert response.status_code == 201, response.text
        created = response.json()
        assert httpx.put(created["upload_url"], content=data).status_code == 200
        job_id = created["job"]["id"]
        response = self.http.post(f"/api/jobs/{job_id}/run")
        assert response.status_code == 202, response.text
        return job_id

    def submit(self, version_id: str, headers: dict | None = None, **body) -> httpx.Response:
        """POST /api/jobs as it is: the response, whatever its status."""
        return self.http.post("/api/jobs", json={"version_id": version_id, **body}, headers=headers)

    def run(self, version_id: str, data: bytes, timeout: float = 300) -> dict:
        return self.wait_job(self.start_job(version_id, data), timeout=timeout)

    def output_files(self, job_id: str) -> dict[str, bytes]:
        return {o["name"]: httpx.get(o["url"]).content for o in self.outputs(job_id)}

    def wait_version(self, version_id: str, timeout: float = 600, **options) -> dict:
        version = super().wait_version(version_id, timeout=timeout, **options)
        assert version["status"] in VERSION.terminal, f"still {version['status']} after {timeout} s"
        return version

    def wait_job(self, job_id: str, timeout: float = 300, **options) -> dict:
        job = super().wait_job(job_id, timeout=timeout, **options)
        assert job["status"] in JOB.terminal, f"job still {job['status']} after {timeout} s"
        return job


def remove_user(user_id: uuid.UUID, storage: Storage, client: docker.DockerClient) -> None:
    """Removes a user with every object, image and row they made (core/removal.py), and the
    images and warm sandboxes the test runs left on the engine."""
    with SessionLocal() as session:
        warm = {"label": f"{USER_LABEL}={user_id}"}
        for container in client.containers.list(all=True, filters=warm, sparse=True):
            sandbox.remove(container)  # the user's warm sandboxes (gone already is fine)
        for model in session.scalars(select(Model).where(Model.owner_id == user_id)).all():
            _remove_images(model_repository(model.id), client)
        user = session.get(User, user_id)
        if user is not None:  # a test may have removed the account itself
            removal.remove_account(session, storage, Registry(), user)


def _remove_images(repository: str, client: docker.DockerClient) -> None:
    for image in client.images.list(name=engine_name(repository)):
        # Warm sandboxes of any user who ran this (public) model hold the image.
        # sparse: a container removed since the listing (the pool's own discards) is fine
        held = client.containers.list(all=True, filters={"ancestor": image.id}, sparse=True)
        for container in held:
            sandbox.remove(container)
        client.images.remove(image.id, force=True)


def cached_bytes(path: Path) -> int:
    """How much of the file the page cache holds (util-linux's fincore)."""
    found = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(found.stdout)
