"""A small Python client of the farm's REST API, for the tests and the benchmarks."""

import io
import time
import uuid
import zipfile

import httpx

from core.settings import settings

API_URL = f"http://{settings.api_host}:{settings.api_port}"
TERMINAL_VERSION = {"READY", "FAILED"}
TERMINAL_JOB = {"SUCCEEDED", "FAILED"}


def make_zip(files: dict[str, str | bytes]) -> bytes:
    """A ZIP of files; the same files always give the same bytes (fixed timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


class Farm:
    """An API client logged in as one user. Its verbs assert success: a failure is a bug."""

    def __init__(self, http: httpx.Client, email: str, user_id: str) -> None:
        self.http, self.email, self.user_id = http, email, user_id

    @classmethod
    def register(cls, email: str, password: str, api_url: str = API_URL) -> "Farm":
        http = httpx.Client(base_url=api_url, timeout=60)
        registered = http.post("/api/users/register", json={"email": email, "password": password})
        assert registered.status_code == 201, registered.text
        login = http.post("/api/users/login", data={"username": email, "password": password})
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        return cls(http, email, registered.json()["id"])

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
