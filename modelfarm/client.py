"""A client of the farm's REST API: one method per call, the answers as the API's JSON.

    from modelfarm import Client

    with Client("http://127.0.0.1:8000", token="mf_...") as farm:
        model = farm.create_model("digits")
        version = farm.wait_version(farm.push(model["id"], package)["id"])
        job = farm.predict(version["id"], {"image": Path("7.png"), "top_k": 2})

Every error answer raises ApiError, with the API's own sentence of what to fix.
"""

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from modelfarm import unavailable
from modelfarm.errors import ApiError
from modelfarm.events import Event, follow
from modelfarm.transfer import (
    IN_PARTS_ABOVE,
    ByContent,
    Progress,
    get,
    job_inputs,
    put,
    relative_parts,
    send_by_content,
    upload_in_parts,
)

VERSION_ENDED = {"READY", "FAILED"}
JOB_ENDED = {"SUCCEEDED", "FAILED", "CANCELED"}
PAGE = 100
CONTEXT_TIMEOUT = httpx.Timeout(60, read=600)


class Client:
    def __init__(
        self, api_url: str, token: str | None = None, *, timeout: float = 60,
        transport: httpx.BaseTransport | None = None,
    ) -> None:  # fmt: skip
        self.http = httpx.Client(base_url=api_url, timeout=timeout, transport=transport)
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One request (a read answered 503 sent again: modelfarm/unavailable.py); ApiError for
        an error answer."""
        response = unavailable.request(self.http, method, path, **options)
        if response.is_error:
            raise ApiError.of(response)
        return response

    def _all(self, path: str) -> list[dict]:
        """Every item of a paged list."""
        items: list[dict] = []
        while True:
            page = self.call("GET", path, params={"offset": len(items), "limit": PAGE}).json()
            items += page["items"]
            if not page["items"] or len(items) >= page["total"]:
                return items

    # Users and API tokens

    def register(self, email: str, password: str) -> dict:
        return self.call(
            "POST", "/api/users/register", json={"email": email, "password": password}
        ).json()

    def login(self, email: str, password: str) -> str:
        """Logs in (a login token, which may also manage API tokens) and uses the token."""
        form = {"username": email, "password": password}
        token = self.call("POST", "/api/users/login", data=form).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        return token

    def logout(self) -> None:
        """Ends the client's token (a login token: every one of the user's)."""
        self.call("POST", "/api/users/logout")

    def me(self) -> dict:
        return self.call("GET", "/api/users/me").json()

    def create_token(
        self, name: str, scopes: list[str], expires_in_days: int | None = None
    ) -> dict:
        body = {"name": name, "scopes": scopes, "expires_in_days": expires_in_days}
        return self.call("POST", "/api/tokens", json=body).json()

    def tokens(self) -> list[dict]:
        return self.call("GET", "/api/tokens").json()

    def revoke_token(self, token_id: str) -> None:
        self.call("DELETE", f"/api/tokens/{token_id}")

    # Models, versions and aliases

    def create_model(
        self, name: str, *, description: str = "", visibility: str = "private"
    ) -> dict:
        body = {"name": name, "description": description, "visibility": visibility}
        return self.call("POST", "/api/models", json=body).json()

    def models(self) -> list[dict]:
        return self._all("/api/models")

    def model(self, model_id: str) -> dict:
        return self.call("GET", f"/api/models/{model_id}").json()

    def find_model(self, name_or_id: str) -> dict | None:
        """A model by id, or by name: the caller's own first, then a public one."""
        if _is_uuid(name_or_id):
            return self.model(name_or_id)
        mine = self.me()["id"]
        named = [m for m in self.models() if m["name"] == name_or_id]
        return next((m for m in named if m["owner_id"] == mine), named[0] if named else None)

    def versions(self, model_id: str) -> list[dict]:
        return self._all(f"/api/models/{model_id}/versions")

    def version(self, version_id: str) -> dict:
        return self.call("GET", f"/api/versions/{version_id}").json()

    def push(
        self, model_id: str, package: bytes | Path, *, by_content: ByContent = (),
        progress: Progress = None, made: Callable[[dict], None] | None = None,
    ) -> dict:  # fmt: skip
        """A new version of the model from a package ZIP (its bytes, or a file streamed from
        disk) and its files sent by content (modelfarm/packing.py), each with its declaration:
        uploaded, the ZIP in parts when big, its build started. `made` is told the version
        before the upload, to resume it (`resume_push`) if it stops midway."""
        created = self.call("POST", f"/api/models/{model_id}/versions").json()
        if made is not None:
            made(created["version"])
        if isinstance(package, Path) and (by_content or package.stat().st_size > IN_PARTS_ABOVE):
            return self.resume_push(
                created["version"]["id"], package, by_content=by_content, progress=progress
            )
        put(created["upload_url"], package, progress)
        return self.call("POST", f"/api/versions/{created['version']['id']}/build").json()

    def resume_push(
        self, version_id: str, package: Path, *, by_content: ByContent = (),
        progress: Progress = None,
    ) -> dict:  # fmt: skip
        """Uploads what the store does not have yet of the version's files sent by content and
        of its package's parts (all of them the first time), then starts its build."""
        if by_content:
            send_by_content(self.call, version_id, by_content, progress)
        upload_in_parts(self.call, version_id, package, progress)
        return self.call("POST", f"/api/versions/{version_id}/build").json()

    def build_log(self, version_id: str) -> str:
        return self.call("GET", f"/api/versions/{version_id}/logs").text

    def dockerfile(self, version_id: str) -> str:
        """The Dockerfile the version's image was built from."""
        return self.call("GET", f"/api/versions/{version_id}/dockerfile").text

    def download_context(self, version_id: str, path: Path) -> None:
        """The version's build context, saved at path as a tar.gz: unpacked, `docker build
        --network none` of it makes the version's image. The farm gathers it first (wheels
        and all), hence the long wait for its first byte."""
        path_in_api = f"/api/versions/{version_id}/context"
        with self.http.stream("GET", path_in_api, timeout=CONTEXT_TIMEOUT) as response:
            if response.is_error:
                response.read()
                raise ApiError.of(response)
            with path.open("wb") as sink:
                for chunk in response.iter_bytes(1 << 20):
                    sink.write(chunk)

    def wait_version(
        self, version_id: str, *, log: Callable[[str], None] | None = None, poll_s: float = 0.3,
        timeout: float = 1800,
    ) -> dict:  # fmt: skip
        """The version once READY or FAILED; `log` gets each line of the build log as it is
        written (the version's events)."""
        if log is not None:
            for event in self.events("versions", version_id):
                if event.event == "log":
                    log(event.data["line"] + "\n")
            return self.version(version_id)
        deadline = time.monotonic() + timeout
        while True:
            version = self.version(version_id)
            if version["status"] in VERSION_ENDED or time.monotonic() > deadline:
                return version
            time.sleep(poll_s)

    def set_alias(self, model_id: str, alias: str, version_id: str) -> dict:
        path = f"/api/models/{model_id}/aliases/{alias}"
        return self.call("PUT", path, json={"version_id": version_id}).json()

    def aliases(self, model_id: str) -> list[dict]:
        return self.call("GET", f"/api/models/{model_id}/aliases").json()

    def delete_alias(self, model_id: str, alias: str) -> None:
        self.call("DELETE", f"/api/models/{model_id}/aliases/{alias}")

    # Jobs

    def predict(
        self, version_id: str | None, inputs: dict[str, Any], *, model_id: str | None = None,
        alias: str | None = None, wait_s: int = 60, progress: Callable[[int], None] | None = None,
    ) -> dict:  # fmt: skip
        """A job on the inputs, run to its end: files are given as Paths (sent inline when
        small, else uploaded), other values as they are."""
        job = self._start_job(version_id, inputs, model_id, alias, wait_s, progress)
        return job if job["status"] in JOB_ENDED else self.wait_job(job["id"])

    def stream(
        self, version_id: str | None, inputs: dict[str, Any], *, model_id: str | None = None,
        alias: str | None = None, progress: Callable[[int], None] | None = None,
    ) -> Iterator[Event]:  # fmt: skip
        """A job on the inputs, as predict() makes it, and its events as they come (what the
        model prints, each chunk a streaming predict yields) until `done`, which holds the job."""
        job = self._start_job(version_id, inputs, model_id, alias, 0, progress)
        return self.events("jobs", job["id"])

    def _start_job(
        self, version_id: str | None, inputs: dict[str, Any], model_id: str | None,
        alias: str | None, wait_s: int, progress: Callable[[int], None] | None,
    ) -> dict:  # fmt: skip
        """The job, created and its files uploaded: queued, or ended within wait_s."""
        named = (
            {"version_id": version_id} if alias is None else {"model_id": model_id, "alias": alias}
        )
        sent, uploads = job_inputs(inputs)
        created = self.create_job({**named, "inputs": sent}, wait_s=0 if uploads else wait_s)
        job = created["job"]
        if uploads:
            for name, path in uploads.items():
                put(created["upload_urls"][name], path, progress)
            job = self.run_job(job["id"], wait_s=wait_s)
        return job

    def create_job(
        self, body: dict, *, wait_s: int = 0, idempotency_key: str | None = None
    ) -> dict:
        headers = {"Prefer": f"wait={wait_s}"} if wait_s else {}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return self.call(
            "POST", "/api/jobs", json=body, headers=headers, timeout=wait_s + 60
        ).json()

    def run_job(self, job_id: str, *, wait_s: int = 0) -> dict:
        headers = {"Prefer": f"wait={wait_s}"} if wait_s else {}
        return self.call(
            "POST", f"/api/jobs/{job_id}/run", headers=headers, timeout=wait_s + 60
        ).json()

    def job(self, job_id: str) -> dict:
        return self.call("GET", f"/api/jobs/{job_id}").json()

    def jobs(self) -> list[dict]:
        return self._all("/api/jobs")

    def wait_job(self, job_id: str, *, poll_s: float = 0.3, timeout: float = 3600) -> dict:
        """The job once it has ended (or while it waits for its uploads)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in JOB_ENDED | {"UPLOADING"} or time.monotonic() > deadline:
                return job
            time.sleep(poll_s)

    def events(self, kind: str, row_id: str, *, after: str | None = None) -> Iterator[Event]:
        """The live events of a job or version (kind "jobs" or "versions"), from the first or
        after the id `after`, until its `done` (modelfarm/events.py)."""
        return follow(self.http, f"/api/{kind}/{row_id}/events", after)

    def cancel_job(self, job_id: str) -> dict:
        return self.call("POST", f"/api/jobs/{job_id}/cancel").json()

    def job_items(self, job_id: str) -> list[dict]:
        return self._all(f"/api/jobs/{job_id}/items")

    def outputs(self, job_id: str) -> list[dict]:
        """The job's output files, result.json and run.log among them: {name, size, url}."""
        return self.call("GET", f"/api/jobs/{job_id}/outputs").json()["outputs"]

    def download_outputs(self, job_id: str, folder: Path) -> list[Path]:
        """The job's outputs written under folder at their relative paths (a/x.txt and b/x.txt
        both kept); a name that would leave folder is refused, whatever the farm lists."""
        written = []
        for output in self.outputs(job_id):
            target = folder.joinpath(*relative_parts(output["name"]))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(get(output["url"]))
            written.append(target)
        return written

    def job_log(self, job_id: str) -> str:
        """The model's prints during the job ('' when it printed nothing)."""
        return self.call("GET", f"/api/jobs/{job_id}/logs").text

    def remove(self, kind: str, row_id: str) -> None:
        """Removes a model, version or job ("models", "versions", "jobs") with its files."""
        self.call("DELETE", f"/api/{kind}/{row_id}")

    def warm(self, version_id: str) -> dict:
        return self.call("POST", f"/api/versions/{version_id}/warm").json()

    def health(self) -> dict:
        """Each dependency's state; ApiError (503) naming what is down."""
        return self.call("GET", "/health").json()


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
