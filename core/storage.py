"""Object storage on any S3-compatible server, through the minio SDK.

Object keys are built here from ids only, never from user-supplied strings. A user uploads to
an upload key through a presigned PUT URL; when work starts on it, the API seals it: copies it
server-side to a key no URL points at, and records its size. Workers read only sealed objects,
streaming them with the recorded size as a hard cap, so a later PUT changes nothing.
"""

import io
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import certifi
import httpx
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import PostPolicy
from minio.error import S3Error

from core.settings import settings

# The codes an S3 server answers for an object that is not there.
PARALLEL_PUTS = 8
# The slowest rate of a server-side copy the deadlines allow for (core/storage.Storage.seal).
COPY_BYTES_PER_S = 32 * 1024**2
# Made once: a new httpx client costs about 35 ms (its TLS context), the request itself 2 ms.
_capacity_client = httpx.Client(timeout=settings.request_deadline_s)
_MISSING = ("NoSuchKey", "NoSuchObject", "NotFound")


class TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


class NotAsSealed(Exception):
    """A sealed object read back is not the size it had when it was sealed."""


def package_upload_key(version_id: uuid.UUID) -> str:
    return f"uploads/packages/{version_id}.zip"


PACKAGES_PREFIX = "packages/"


def package_key(version_id: uuid.UUID) -> str:
    """The sealed package: what the build reads."""
    return f"{PACKAGES_PREFIX}{version_id}.zip"


def build_log_key(version_id: uuid.UUID) -> str:
    return f"build-logs/{version_id}.log"


# The name of a job's one input file, as the model sees it (typed inputs will add more).
JOB_INPUT_NAME = "input"


def job_input_upload_key(job_id: uuid.UUID, name: str = JOB_INPUT_NAME) -> str:
    return f"jobs/{job_id}/uploads/{name}"


def job_input_key(job_id: uuid.UUID, name: str = JOB_INPUT_NAME) -> str:
    """A sealed input: what the run reads."""
    return f"jobs/{job_id}/inputs/{name}"


# The names the farm lists among a job's outputs for its own files: the model's log, and each
# item's outputs under items/<i>/ in a batch. A model's output may not take them.
JOB_LOG_NAME = "run.log"
BATCH_ITEMS_FOLDER = "items"


def job_log_key(job_id: uuid.UUID) -> str:
    return f"jobs/{job_id}/{JOB_LOG_NAME}"


def job_output_key(job_id: uuid.UUID, index: int, *, attempt: int, item: int | None = None) -> str:
    """The key of a job's index-th output file (of its item-th item, in a batch job), as its
    attempt-th attempt stored it."""
    if item is not None:
        return f"jobs/{job_id}/outputs/{attempt}/items/{item}/{index}"
    return f"jobs/{job_id}/outputs/{attempt}/{index}"


def wheel_key(sha256: str) -> str:
    """A wheel a version's lock names, kept by its content for the version's build context
    (core/context.py): shared by every version whose lock holds it."""
    return f"wheels/{sha256}"


def job_prefix(job_id: uuid.UUID) -> str:
    return f"jobs/{job_id}/"


def store_disks() -> list[dict] | None:
    """The store's disks as its volume server reports them (MODELFARM_S3_CAPACITY_URL), each
    {"dir", "all", "used", "free", ...} in bytes; None when the farm is not told where."""
    if not settings.s3_capacity_url:
        return None
    status = _capacity_client.get(settings.s3_capacity_url).raise_for_status().json()
    return status.get("DiskStatuses", [])


class _OnceUnlessTimedOut(urllib3.Retry):
    """Tries a request once more (a pooled connection the server closed, a 503), except one
    that timed out: waiting on a hung server again would double the deadline."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None,
                  _stacktrace=None) -> urllib3.Retry:  # fmt: skip
        if isinstance(error, urllib3.exceptions.TimeoutError):
            raise urllib3.exceptions.MaxRetryError(_pool, url, error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _deadline_s(patient: bool) -> float:
    return settings.worker_deadline_s if patient else settings.request_deadline_s


def _http(*, patient: bool, deadline_s: float | None = None) -> urllib3.PoolManager:
    """The workers' (patient) connections keep the SDK's retries, which outwait a short outage,
    and wait up to the worker deadline for each read of a big object; the API's give up within
    the request deadline, so a request gets its 503 fast. deadline_s: longer, for a copy."""
    deadline = deadline_s or _deadline_s(patient)
    if patient:
        retries = urllib3.Retry(total=5, backoff_factor=0.2)
    else:
        retries = _OnceUnlessTimedOut(total=1)
    retries = retries.new(status_forcelist=[500, 502, 503, 504])
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=deadline, read=deadline), retries=retries, maxsize=10,
        cert_reqs="CERT_REQUIRED", ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
    )  # fmt: skip


class Storage:
    """The farm's bucket: the workers' (patient) or the API's (core/storage._http)."""

    def __init__(self, bucket: str = settings.s3_bucket, *, patient: bool = True) -> None:
        self.bucket = bucket
        self.patient = patient
        self.client = self._client(settings.s3_endpoint, _http(patient=patient))
        # Presigned URLs are signed for the host the client reaches, which under docker compose
        # differs from the one the services use. Signing is local: no request goes to that host
        # because the region is given.
        self.public_client = self._client(settings.s3_client_endpoint)
        self.url_lifetime = timedelta(seconds=settings.presigned_url_lifetime_s)

    @staticmethod
    def _client(endpoint: str, http: urllib3.PoolManager | None = None) -> Minio:
        return Minio(
            endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
            http_client=http,
        )

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)

    def presigned_put(self, key: str) -> str:
        return self.public_client.presigned_put_object(self.bucket, key, self.url_lifetime)

    def presigned_post(self, key: str, *, max_bytes: int) -> dict[str, Any]:
        """A browser-style form upload to key that the store itself refuses past max_bytes (a
        POST policy with content-length-range): {"url", "fields"}; POST the fields with the
        file last, as multipart/form-data field "file"."""
        policy = PostPolicy(self.bucket, datetime.now(UTC) + self.url_lifetime)
        policy.add_equals_condition("key", key)
        policy.add_content_length_range_condition(1, max_bytes)
        fields = self.public_client.presigned_post_policy(policy)
        scheme = "https" if settings.s3_secure else "http"
        url = f"{scheme}://{settings.s3_client_endpoint}/{self.bucket}"
        return {"url": url, "fields": {"key": key, **fields}}

    def presigned_get(self, key: str, filename: str | None = None) -> str:
        """A GET URL; with filename, the download is saved under that name."""
        headers = None
        if filename:
            quoted = filename.rsplit("/", 1)[-1].replace('"', "")
            headers = {"response-content-disposition": f'attachment; filename="{quoted}"'}
        return self.public_client.presigned_get_object(
            self.bucket, key, self.url_lifetime, response_headers=headers
        )

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""
        try:
            return self.client.stat_object(self.bucket, key).size
        except S3Error as error:
            if error.code in _MISSING:
                return None
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream"):
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type)

    def put_file(self, key: str, path: Path) -> None:
        """Uploads the file, in parts for a big one, unless an object of its size is there."""
        if self.size(key) != path.stat().st_size:
            self.client.fput_object(self.bucket, key, str(path))

    def put_all(self, objects: list[tuple[str, bytes]]) -> None:
        """Many small objects at once (a batch's outputs)."""
        with ThreadPoolExecutor(PARALLEL_PUTS) as pool:
            list(pool.map(lambda each: self.put_bytes(*each), objects))

    def seal(self, upload_key: str, sealed_key: str, *, limit: int) -> int | None:
        """Copies an upload to its sealed key and removes the upload; returns the sealed size,
        None when nothing was uploaded. Over `limit`, both are removed and TooLarge raised."""
        uploaded = self.size(upload_key)
        if uploaded is None:
            return None
        try:
            self._copier(uploaded).copy_object(
                self.bucket, sealed_key, CopySource(self.bucket, upload_key)
            )
        except S3Error as error:
            if error.code in _MISSING:
                return None
            raise
        self.client.remove_object(self.bucket, upload_key)
        size = self.client.stat_object(self.bucket, sealed_key).size
        if size > limit:
            self.client.remove_object(self.bucket, sealed_key)
            raise TooLarge(size)
        return size

    def _copier(self, size: int) -> Minio:
        """The client for a server-side copy of size bytes: the store answers once it has
        copied them all, so a big one's deadline grows with its size."""
        if size <= COPY_BYTES_PER_S:
            return self.client
        deadline = _deadline_s(self.patient) + size / COPY_BYTES_PER_S
        return self._client(settings.s3_endpoint, _http(patient=self.patient, deadline_s=deadline))

    def _open(self, key: str):
        """The object's streaming response, or None when it does not exist."""
        try:
            return self.client.get_object(self.bucket, key)
        except S3Error as error:
            if error.code in _MISSING:
                return None
            raise

    def download(self, key: str, path: Path, *, size: int, hashing=None) -> bool:
        """The object streamed to path, as stream (path is made, empty, for a missing one);
        `hashing` (a hashlib object), when given, is fed the bytes on the way."""
        with path.open("wb") as sink:

            def write(chunk: bytes) -> None:
                sink.write(chunk)
                if hashing is not None:
                    hashing.update(chunk)

            return self.stream(key, write, size=size)

    def stream(self, key: str, write: Callable[[bytes], object], *, size: int) -> bool:
        """The object's bytes to write(), in chunks, refusing (NotAsSealed) as soon as they pass
        `size` bytes, and fewer too; False when it does not exist."""
        response = self._open(key)
        if response is None:
            return False
        written = 0
        try:
            for chunk in response.stream(1 << 20):
                written += len(chunk)
                if written > size:
                    raise NotAsSealed(f"more than {size} bytes")
                write(chunk)
        finally:
            response.close()
            response.release_conn()
        if written != size:
            raise NotAsSealed(f"{written} bytes, not {size}")
        return True

    def get_bytes(self, key: str) -> bytes | None:
        response = self._open(key)
        if response is None:
            return None
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, key)

    def keys_older(self, prefix: str, moment: datetime) -> list[str]:
        """The keys under prefix of objects last written before moment."""
        listed = self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
        return [item.object_name for item in listed if item.last_modified < moment]

    def delete_prefix(self, prefix: str) -> None:
        for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            self.client.remove_object(self.bucket, item.object_name)
