"""Web UI benchmark (issue 28), on the local stack, for a user who owns MODELS models (made in
the database directly: a build each would take hours), signed in through the sign-in form:

- the bytes of script and style the models page loads first (its <script src> and <link
  rel=stylesheet> assets, fetched with Accept-Encoding: gzip; gzipped here when the server
  sends them uncompressed, and said so); target <= 100 KB;
- page load to usable, p50 over LOADS loads of the models page in headless Chromium, from the
  browser's Navigation Timing (domContentLoadedEventEnd and loadEventEnd); target <= 300 ms;
- GET /models with the session cookie, p50/p99 over REQUESTS requests, as the client times
  them on this machine; target <= 50 ms.

    .venv/bin/python scripts/bench_ui.py       (needs the stack: scripts/up.sh)
"""

import gzip
import sys
import time
import uuid
from html.parser import HTMLParser
from pathlib import Path

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.db import SessionLocal  # noqa: E402
from core.models import Model  # noqa: E402
from core.storage import Storage  # noqa: E402
from scripts.bench_warm import percentile  # noqa: E402
from tests.integration.browser import chromium, sign_in  # noqa: E402
from tests.utils import API_URL, Farm, remove_user  # noqa: E402

MODELS = 1000
LOADS = 30
REQUESTS = 50
WARM_UP = 5
PASSWORD = "bench-password"
NAVIGATION = "return performance.getEntriesByType('navigation')[0].toJSON()"


class _Assets(HTMLParser):
    """The page's script and style sheet URLs, as its <script src> and <link rel=stylesheet>."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(found["src"])
        elif tag == "link" and "stylesheet" in (found.get("rel") or "").split():
            self.urls.append(found["href"])


def _owner_of_many_models() -> Farm:
    farm = Farm.register(f"bench-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    with SessionLocal() as session:
        session.add_all(
            Model(owner_id=uuid.UUID(farm.user_id), name=f"bench-model-{number:04d}",
                  description=f"Benchmark model {number}.")
            for number in range(MODELS)
        )  # fmt: skip
        session.commit()
    return farm


def _signed_in(farm: Farm) -> httpx.Client:
    """A client with the farm user's session cookie, from the sign-in form."""
    client = httpx.Client(base_url=API_URL, timeout=60)
    token = client.get("/signin").cookies["modelfarm_csrf"]
    form = {"email": farm.email, "password": PASSWORD, "csrf_token": token}
    signed = client.post("/signin", data=form)
    if signed.status_code != 303:
        raise SystemExit(f"the bench user could not sign in: {signed.status_code}")
    return client


def asset_bytes(client: httpx.Client) -> dict:
    """The gzipped bytes of the models page's script and style."""
    parser = _Assets()
    parser.feed(client.get("/models").text)
    total, by_server = 0, True
    for url in parser.urls:
        asset = client.get(url, headers={"Accept-Encoding": "gzip"})
        asset.raise_for_status()
        if asset.headers.get("content-encoding") == "gzip":
            total += asset.num_bytes_downloaded
        else:
            by_server = False
            total += len(gzip.compress(asset.content, compresslevel=9))
    return {
        "models_page_assets": len(parser.urls),
        "models_page_script_style_gzip_kb": round(total / 1024, 1),
        "models_page_assets_gzipped_by": "the server" if by_server else "the bench (sent plain)",
    }


def page_load(farm: Farm) -> dict:
    """p50 of the models page's load to DOMContentLoaded and to load, in Chromium."""
    ready, loaded = [], []
    with chromium() as driver:
        sign_in(driver, API_URL, farm.email, PASSWORD)
        for _ in range(LOADS):
            driver.get(f"{API_URL}/models")
            timing = driver.execute_script(NAVIGATION)
            ready.append(timing["domContentLoadedEventEnd"])
            loaded.append(timing["loadEventEnd"])
    return {
        f"models_page_dom_ready_p50_ms_{LOADS}_loads": round(percentile(ready, 0.5), 1),
        f"models_page_load_p50_ms_{LOADS}_loads": round(percentile(loaded, 0.5), 1),
    }


def server_time(client: httpx.Client) -> dict:
    """p50/p99 of GET /models (its first page of the user's MODELS models and their count)."""
    times = []
    for attempt in range(WARM_UP + REQUESTS):
        started = time.perf_counter()
        answer = client.get("/models")
        took = time.perf_counter() - started
        if answer.status_code != 200 or f"{MODELS} models" not in answer.text:
            raise SystemExit(f"GET /models answered {answer.status_code} without the models")
        if attempt >= WARM_UP:
            times.append(took * 1000)
    return {
        f"models_page_{MODELS}_models_p50_ms": round(percentile(times, 0.5), 1),
        f"models_page_{MODELS}_models_p99_ms": round(percentile(times, 0.99), 1),
    }


def measure() -> dict:
    farm = _owner_of_many_models()
    client = _signed_in(farm)
    try:
        return asset_bytes(client) | page_load(farm) | server_time(client)
    finally:
        client.close()
        farm.http.close()
        engine = docker.from_env()
        try:
            remove_user(uuid.UUID(farm.user_id), Storage(), engine)
        finally:
            engine.close()


if __name__ == "__main__":
    print(measure())
