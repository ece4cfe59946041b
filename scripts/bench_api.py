"""API load benchmark: authenticated `GET /api/models` from 20 connections (wrk, a second
process on loopback), against the stack's API (MODELFARM_API_WORKERS processes) and, side by
side in the same run, against one API process started beside it: throughput, p50 and p99.

    .venv/bin/python scripts/bench_api.py       (needs the stack: scripts/up.sh)
"""

import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.settings import settings  # noqa: E402
from tests.integration.stack import api_process  # noqa: E402
from tests.utils import API_URL, Farm  # noqa: E402

CONNECTIONS = 20
SECONDS = 15
MODELS = 5
ONE_PROCESS_PORT = 8013
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def load(url: str, token: str) -> dict:
    """wrk's figures for GET url/api/models: requests per second, p50 and p99 in ms, errors."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", "--latency",
               "-H", f"Authorization: Bearer {token}", f"{url}/api/models"]  # fmt: skip
    subprocess.run([*command[:-1], "-d3s", command[-1]], capture_output=True, check=True)
    out = subprocess.run([*command[:-1], f"-d{SECONDS}s", command[-1]], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": round(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))),
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def _latency(out: str, percentile: str) -> float:
    number, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out).groups()
    return round(float(number) * _UNITS[unit], 1)


def measure() -> dict:
    farm = Farm.register(f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench-password")
    for _ in range(MODELS):
        farm.create_model()
    # The API as one process, as it ran before several, beside the stack's.
    log = Path(tempfile.mkdtemp()) / "api.log"
    with api_process(ONE_PROCESS_PORT, log) as url:
        one = load(url, farm.token)
    several = load(API_URL, farm.token)
    workers = settings.api_workers
    return {
        "api_processes": workers,
        f"get_models_{CONNECTIONS}_clients_requests_per_s": several["requests_per_s"],
        f"get_models_{CONNECTIONS}_clients_p50_ms": several["p50_ms"],
        f"get_models_{CONNECTIONS}_clients_p99_ms": several["p99_ms"],
        f"get_models_{CONNECTIONS}_clients_errors": several["errors"],
        "one_process_requests_per_s": one["requests_per_s"],
        "one_process_p50_ms": one["p50_ms"],
        "one_process_p99_ms": one["p99_ms"],
        "several_over_one_process": round(several["requests_per_s"] / one["requests_per_s"], 2),
    }


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name}: {value}")
