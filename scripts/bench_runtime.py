"""Sandbox runtimes side by side: the digits example's cold first sync job (a new user, a new
container) and its warm sync jobs, under runc and under gVisor (runsc, asked for in the
package's modelfarm.yaml), in one run.

    .venv/bin/python scripts/bench_runtime.py       (needs the stack: scripts/up.sh)
"""

import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.bench_run import DIGITS, PACKAGE_FILES  # noqa: E402
from scripts.bench_warm import build, cold_and_warm  # noqa: E402
from tests.utils import Farm  # noqa: E402

RUNTIMES = ("runc", "runsc")


def files_for(runtime: str) -> dict[str, bytes]:
    files = {name: (DIGITS / name).read_bytes() for name in PACKAGE_FILES}
    files["modelfarm.yaml"] += f"\nruntime: {runtime}\n".encode()
    return files


def measure() -> dict:
    farm = Farm.register(f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench-password")
    figures: dict[str, float] = {}
    for runtime in RUNTIMES:
        cold_s, warm_s = cold_and_warm(build(farm, files_for(runtime)))
        figures[f"{runtime}_cold_sync_job_s"] = round(cold_s, 3)
        figures[f"{runtime}_warm_sync_job_ms"] = round(warm_s * 1000, 1)
    figures["runsc_over_runc_cold"] = round(
        figures["runsc_cold_sync_job_s"] / figures["runc_cold_sync_job_s"], 2
    )
    figures["runsc_over_runc_warm"] = round(
        figures["runsc_warm_sync_job_ms"] / figures["runc_warm_sync_job_ms"], 2
    )
    return figures


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name}: {value}")
