"""All benchmarks in one run: writes bench/results.json and bench/results.md.

make bench                                    (brings the stack up first)
.venv/bin/python scripts/bench.py build dockerfile
                                              only these sections; the others are kept from
                                              the last results.json, each with its time
"""

import json
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import docker
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_api  # noqa: E402
import bench_big  # noqa: E402
import bench_build  # noqa: E402
import bench_cluster  # noqa: E402
import bench_dockerfile  # noqa: E402
import bench_hangs  # noqa: E402
import bench_live  # noqa: E402
import bench_run  # noqa: E402
import bench_runtime  # noqa: E402
import bench_ui  # noqa: E402
import bench_upload  # noqa: E402
import bench_warm  # noqa: E402

from core.db import SessionLocal  # noqa: E402
from core.models import User  # noqa: E402
from core.storage import Storage  # noqa: E402
from tests.utils import remove_user  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "bench"


def settled(measure: Callable[[], dict]) -> dict:
    """measure() once the page cache has written out what the sections before left (a cold
    build writes hundreds of MB), so that their disk writes do not land in its timings."""
    os.sync()
    return measure()


SECTIONS: dict[str, Callable[[], dict]] = {
    "build": bench_build.measure,
    "dockerfile": bench_dockerfile.measure,
    "big": bench_big.measure,
    "upload": bench_upload.measure,
    "run": bench_run.measure,
    "warm": bench_warm.measure,
    "api": bench_api.measure,
    "live": bench_live.measure,
    "hangs": bench_hangs.measure,
    "runtime": bench_runtime.measure,
    "cluster": bench_cluster.measure,
    "ui": bench_ui.measure,
}


def main(chosen: list[str]) -> None:
    results_path = OUT / "results.json"
    results = json.loads(results_path.read_text()) if chosen and results_path.exists() else {}
    measured_when = results.setdefault("measured_when", {})
    for section in set(SECTIONS) & set(results):  # kept from the run that measured them
        measured_when.setdefault(section, results["when"])
    now = datetime.now(UTC).isoformat(timespec="seconds")
    results |= {"when": now, "machine": f"{platform.machine()}, {platform.node()}"}
    for section in chosen or SECTIONS:
        results[section] = settled(SECTIONS[section])
        measured_when[section] = now
    OUT.mkdir(exist_ok=True)
    results_path.write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"# modelfarm benchmarks ({results['when']})", "", "| figure | value |", "|---|---|"]
    for section in SECTIONS:
        when = measured_when.get(section, results["when"])
        rows = results.get(section, {}).items()
        lines += [f"| {section}: {name} | {value} |" for name, value in rows]
        lines += [f"| {section}: measured | {when} |"]
    (OUT / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    remove_bench_users()


def remove_bench_users() -> None:
    """The benchmarks' users go, with their (public) models, so that no later build reuses them."""
    client = docker.from_env()
    try:
        with SessionLocal() as session:
            users = session.scalars(select(User.id).where(User.email.like("bench-%"))).all()
        for user_id in users:
            remove_user(user_id, Storage(), client)
    finally:
        client.close()


if __name__ == "__main__":
    unknown = set(sys.argv[1:]) - set(SECTIONS)
    if unknown:
        raise SystemExit(
            f"no such section: {', '.join(sorted(unknown))}; the sections: {list(SECTIONS)}"
        )
    main(sys.argv[1:])
