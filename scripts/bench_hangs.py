"""Hung dependency benchmark (issue 29), on the local stack: with object storage frozen
(SIGSTOP), how fast the farm says so and how the rest keeps its pace. Side by side in one run:
p50/p99 of GET /api/models (which does not need the store) and of inline sync jobs (whose
outputs go to the store) with the store answering and frozen; the time from the freeze to the
first 503 of a route that needs the store, and from the thaw to its first success.

    .venv/bin/python scripts/bench_hangs.py       (needs the stack: scripts/up.sh)
"""

import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.bench_warm import percentile  # noqa: E402
from tests.integration import stack  # noqa: E402
from tests.utils import Farm, inline  # noqa: E402

ECHO = "def predict(input_path, output_dir):\n    return {'size': input_path.stat().st_size}\n"
LISTS = 300
SYNC_JOBS = 40
SYNC_JOBS_FROZEN = 8  # each may wait its whole Prefer: wait while the store is frozen
SYNC_WAIT_S = 10
POLL_S = 0.02


def _timed(call) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = call()
    return (time.perf_counter() - started) * 1000, response


def _lists(farm: Farm) -> list[float]:
    return [_timed(lambda: farm.http.get("/api/models"))[0] for _ in range(LISTS)]


def _sync_jobs(
    farm: Farm, version_id: str, count: int = SYNC_JOBS
) -> tuple[list[float], dict[str, int]]:
    """Inline jobs (Prefer: wait=SYNC_WAIT_S), four at a time: their times, and how many
    answered in each status."""
    headers = {"Prefer": f"wait={SYNC_WAIT_S}"}

    def one(_n: int) -> tuple[float, httpx.Response]:
        return _timed(lambda: farm.submit(version_id, headers, input=inline("x")))

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, range(count)))
    statuses: dict[str, int] = {}
    for _ms, response in answers:
        status = response.json()["job"]["status"] if response.status_code == 201 else "503"
        statuses[status] = statuses.get(status, 0) + 1
    return [ms for ms, _response in answers], statuses


def _first(farm: Farm, path: str, status: int, since: float) -> float:
    """Seconds from `since` until GET path first answers `status`."""
    while farm.http.get(path).status_code != status:
        time.sleep(POLL_S)
    return time.monotonic() - since


def _figures(prefix: str, lists: list[float], sync: list[float]) -> dict:
    return {
        f"{prefix}_models_list_p50_ms": round(percentile(lists, 0.5), 1),
        f"{prefix}_models_list_p99_ms": round(percentile(lists, 0.99), 1),
        f"{prefix}_sync_job_p50_ms": round(percentile(sync, 0.5), 1),
        f"{prefix}_sync_job_p99_ms": round(percentile(sync, 0.99), 1),
    }


def measure() -> dict:
    farm = Farm.register(f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench-password")
    farm.http.timeout = httpx.Timeout(60)
    version = farm.build({"predict.py": ECHO})
    if version["status"] != "READY":
        raise SystemExit(f"the bench model did not build: {version['error']}")
    needs_store = f"/api/versions/{version['id']}/logs"
    _sync_jobs(farm, version["id"])  # warm-up: the user's containers start here
    answering = _figures("answering", _lists(farm), _sync_jobs(farm, version["id"])[0])
    with stack.frozen("seaweedfs"):
        frozen_at = time.monotonic()
        to_503 = _first(farm, needs_store, 503, frozen_at)
        lists = _lists(farm)
        sync, statuses = _sync_jobs(farm, version["id"], SYNC_JOBS_FROZEN)
        thawed_at = time.monotonic()
    to_success = _first(farm, needs_store, 200, thawed_at)
    frozen = _figures("store_frozen", lists, sync)
    return (
        answering | frozen | {
            "store_frozen_sync_job_statuses": statuses,
            "store_frozen_s": round(thawed_at - frozen_at, 1),
            "freeze_to_first_503_s": round(to_503, 2),
            "thaw_to_first_success_s": round(to_success, 2),
            "models_list_p99_frozen_over_answering": round(
                frozen["store_frozen_models_list_p99_ms"]
                / answering["answering_models_list_p99_ms"], 2
            ),
        }
    )  # fmt: skip


if __name__ == "__main__":
    print(measure())
