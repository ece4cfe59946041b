"""A small client for the container registry's HTTP API (Distribution v2)."""

import httpx

from core.settings import settings

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


class Registry:
    def __init__(self, base_url: str = settings.registry_base_url, timeout: float = 5.0) -> None:
        self.base_url = base_url
        self.timeout = timeout

    def ping(self) -> None:
        """Raises when the registry does not answer its API root."""
        response = httpx.get(f"{self.base_url}/v2/", timeout=self.timeout)
        response.raise_for_status()

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest of repository:reference, or None when the registry does not have it."""
        response = httpx.head(
            f"{self.base_url}/v2/{repository}/manifests/{reference}",
            headers={"Accept": MANIFEST_TYPES},
            timeout=self.timeout,
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]
