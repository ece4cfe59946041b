"""Image names, and a small client for the container registry's HTTP API (Distribution v2).

Every image name the farm uses is made here, from ids and content keys only:

    models/<model id>:v<number>     a version's image, as built
    models/<model id>:c-<key>       the same image by content key: an equal key is an equal image
    modelfarm/deps:deps-<key>       a dependency image (base + virtualenv), FROM which every
                                    model image with that lock is built
"""

import functools
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from core.settings import settings

IMAGE_MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)
MANIFEST_TYPES = ", ".join(
    [
        IMAGE_MANIFEST_TYPES,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


DEPS_REPOSITORY = "modelfarm/deps"


def model_repository(model_id: uuid.UUID | str) -> str:
    return f"models/{model_id}"


def version_tag(number: int) -> str:
    return f"v{number}"


def content_tag(key: str) -> str:
    return f"c-{key}"


def deps_tag(key: str) -> str:
    return f"deps-{key}"


def engine_name(repository: str) -> str:
    """The repository as the Docker engine names it: <registry host:port>/<repository>."""
    return f"{settings.registry}/{repository}"


def pinned(repository: str, digest: str) -> str:
    """The reference jobs run: the image by digest, immune to a tag moving."""
    return f"{engine_name(repository)}@{digest}"


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
        response = self.http.get(
            f"{self.base_url}/v2/{source}/manifests/{digest}",
            headers={"Accept": IMAGE_MANIFEST_TYPES}, timeout=self.timeout,
        )  # fmt: skip
        if response.status_code == 404:
            return None
        response.raise_for_status()
        media_type = response.headers["Content-Type"]
        if media_type not in IMAGE_MANIFEST_TYPES.split(", "):
            return None  # an index of images: not what the farm builds
        manifest = response.json()
        blobs = [blob["digest"] for blob in [manifest["config"], *manifest["layers"]]]
        with ThreadPoolExecutor(len(blobs)) as pool:  # a round trip each: all at once
            if not all(pool.map(lambda blob: self._mount(blob, source, target), blobs)):
                return None
        response = self.http.put(
            f"{self.base_url}/v2/{target}/manifests/{tag}", content=response.content,
            headers={"Content-Type": media_type}, timeout=self.timeout,
        )  # fmt: skip
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]

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
