"""Image names, and a small client for the container registry's HTTP API (Distribution v2).

Every image name the farm uses is made here, from ids and content keys only:

    models/<model id>:v<number>     a version's image, as built
    models/<model id>:c-<key>       the same image by content key: an equal key is an equal image
    modelfarm/deps:deps-<key>       a dependency image (base + what the model stage copies out
                                    of the Dockerfile's dependency stage: the virtualenv), whose
                                    blobs every model image with that lock mounts
    modelfarm/base:base-<image id>  the base image, pushed once, whose layers a dependency
                                    image's manifest lists before its own
"""

import functools
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from core.settings import settings

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"  # uncompressed
IMAGE_MANIFEST_TYPES = ", ".join([MANIFEST_V2, "application/vnd.oci.image.manifest.v1+json"])
MANIFEST_TYPES = ", ".join(
    [
        IMAGE_MANIFEST_TYPES,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


DEPS_REPOSITORY = "modelfarm/deps"
BASE_REPOSITORY = "modelfarm/base"


def model_repository(model_id: uuid.UUID | str) -> str:
    return f"models/{model_id}"


def version_tag(number: int) -> str:
    return f"v{number}"


def content_tag(key: str) -> str:
    return f"c-{key}"


def deps_tag(key: str) -> str:
    return f"deps-{key}"


def base_tag(image_id: str) -> str:
    return f"base-{image_id.removeprefix('sha256:')}"


def blobs_of(manifest: dict) -> list[dict]:
    """An image manifest's blobs, each {"digest", "size", …}: its configuration, then its layers."""
    return [manifest["config"], *manifest["layers"]]


def engine_name(repository: str) -> str:
    """The repository as the Docker engine names it: <registry host:port>/<repository>."""
    return f"{settings.registry}/{repository}"


def pinned(repository: str, digest: str) -> str:
    """The reference jobs run: the image by digest, immune to a tag moving."""
    return f"{engine_name(repository)}@{digest}"


CHUNK_BYTES = 1 << 20


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            yield chunk


@functools.cache
def _http_client(_pid: int) -> httpx.Client:
    # One per process (a forked worker makes its own): a new client costs about 35 ms to make
    # (its TLS context), a request to the registry about 2 ms.
    return httpx.Client()


class Registry:
    def __init__(self, base_url: str = settings.registry_base_url, timeout: float = 5.0) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.http = _http_client(os.getpid())

    def ping(self) -> None:
        """Raises when the registry does not answer its API root."""
        response = self.http.get(f"{self.base_url}/v2/", timeout=self.timeout)
        response.raise_for_status()

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest of repository:reference, or None when the registry does not have it."""
        response = self.http.head(
            f"{self.base_url}/v2/{repository}/manifests/{reference}",
            headers={"Accept": MANIFEST_TYPES},
            timeout=self.timeout,
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Removes the manifest, and with it every tag on it, from the repository (its blobs go
        at the registry's next garbage collection, unless another manifest refers to them)."""
        response = self.http.delete(
            f"{self.base_url}/v2/{repository}/manifests/{digest}", timeout=self.timeout
        )
        if response.status_code != 404:  # gone already is fine
            response.raise_for_status()

    def tags(self, repository: str) -> list[str]:
        response = self.http.get(f"{self.base_url}/v2/{repository}/tags/list", timeout=self.timeout)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return response.json().get("tags") or []

    def copy_image(self, source: str, digest: str, target: str, tag: str) -> str | None:
        """source@digest put into target as target:tag without moving its bytes: each blob is
        mounted from source (the registry links it), then the same manifest is put. Its digest
        (the same), or None when the source lacks the image or a blob cannot be mounted."""
        found = self.image_manifest(source, digest)
        if found is None:
            return None
        content, media_type = found
        manifest = json.loads(content)
        blobs = [blob["digest"] for blob in blobs_of(manifest)]
        if not self.mount_all(blobs, source, target):
            return None
        return self.put_manifest(target, tag, content, media_type)

    def image_manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        """The manifest of one image (not an index of them) and its media type, or None."""
        response = self.http.get(
            f"{self.base_url}/v2/{repository}/manifests/{reference}",
            headers={"Accept": IMAGE_MANIFEST_TYPES}, timeout=self.timeout,
        )  # fmt: skip
        if response.status_code == 404:
            return None
        response.raise_for_status()
        media_type = response.headers["Content-Type"]
        if media_type not in IMAGE_MANIFEST_TYPES.split(", "):
            return None  # an index of images: not what the farm builds
        return response.content, media_type

    def image(self, repository: str, reference: str) -> tuple[dict, dict, str] | None:
        """An image's manifest, its configuration and its digest, or None."""
        found = self.image_manifest(repository, reference)
        if found is None:
            return None
        manifest = json.loads(found[0])
        config = json.loads(self.blob(repository, manifest["config"]["digest"]))
        return manifest, config, f"sha256:{hashlib.sha256(found[0]).hexdigest()}"

    def push_config(
        self, repository: str, config: dict, layers: list[dict], timeout: float
    ) -> bytes:
        """Uploads an image's configuration as a blob; the schema-2 manifest of that
        configuration and these layers' entries (their blobs pushed), for put_manifest."""
        content = json.dumps(config).encode()
        digest = f"sha256:{hashlib.sha256(content).hexdigest()}"
        self.push_blob(repository, digest, content, timeout)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": CONFIG_V1, "size": len(content), "digest": digest},
            "layers": layers,
        }
        return json.dumps(manifest).encode()

    def put_manifest(self, repository: str, tag: str, content: bytes, media_type: str) -> str:
        """Puts the manifest as repository:tag; its digest. Its blobs must be there already."""
        response = self.http.put(
            f"{self.base_url}/v2/{repository}/manifests/{tag}", content=content,
            headers={"Content-Type": media_type}, timeout=self.timeout,
        )  # fmt: skip
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]

    def blob(self, repository: str, digest: str) -> bytes:
        response = self.http.get(
            f"{self.base_url}/v2/{repository}/blobs/{digest}", timeout=self.timeout,
            follow_redirects=True,
        )  # fmt: skip
        response.raise_for_status()
        return response.content

    def has_blob(self, repository: str, digest: str) -> bool:
        blob_url = f"{self.base_url}/v2/{repository}/blobs/{digest}"
        return self.http.head(blob_url, timeout=self.timeout).status_code == 200

    def push_blob(
        self, repository: str, digest: str, content: bytes | Path, timeout: float
    ) -> None:
        """Uploads content (bytes, or a file streamed a chunk at a time) as the blob digest
        (the registry checks it), unless it is there."""
        if self.has_blob(repository, digest):
            return
        started = self.http.post(f"{self.base_url}/v2/{repository}/blobs/uploads/", timeout=timeout)
        started.raise_for_status()
        upload = httpx.URL(self.base_url).join(started.headers["Location"])
        if isinstance(content, bytes):
            body, size = content, len(content)
        else:
            body, size = _chunks(content), content.stat().st_size
        response = self.http.put(  # the upload's own query kept: it carries its state
            upload.copy_merge_params({"digest": digest}), content=body, timeout=timeout,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )  # fmt: skip
        response.raise_for_status()

    def download_blob(self, repository: str, digest: str, path: Path, timeout: float) -> None:
        """Writes the blob to path a chunk at a time."""
        url = f"{self.base_url}/v2/{repository}/blobs/{digest}"
        with (
            self.http.stream("GET", url, timeout=timeout, follow_redirects=True) as response,
            path.open("wb") as out,
        ):
            response.raise_for_status()
            for chunk in response.iter_bytes(CHUNK_BYTES):
                out.write(chunk)

    def mount_all(self, blobs: list[str], source: str, target: str) -> bool:
        """Links each blob of source into target (no bytes move); whether all were."""
        with ThreadPoolExecutor(len(blobs)) as pool:  # a round trip each: all at once
            return all(pool.map(lambda blob: self._mount(blob, source, target), blobs))

    def _mount(self, blob: str, source: str, target: str) -> bool:
        response = self.http.post(
            f"{self.base_url}/v2/{target}/blobs/uploads/", params={"mount": blob, "from": source},
            timeout=self.timeout,
        )  # fmt: skip
        if response.status_code == 202:  # not mounted: an upload was opened instead
            upload = httpx.URL(self.base_url).join(response.headers["Location"])
            self.http.delete(upload, timeout=self.timeout)
            return False
        response.raise_for_status()
        return response.status_code == 201
