"""A package of real size uploaded as `modelfarm push` uploads it: in parts, four at a time,
against one PUT of the same file to the same store, side by side in one run; each with what
sealing it costs when the build starts (a server-side copy for the PUT, completing the upload
for the parts), and a resumed upload (half the parts there already) against a whole one.

    .venv/bin/python scripts/bench_upload.py [GB]     (needs the stack: scripts/up.sh, with its
                                                       default package limit of 4 GiB)
"""

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from api.uploads import complete_in_parts  # noqa: E402
from core.db import SessionLocal  # noqa: E402
from core.models import ModelVersion  # noqa: E402
from core.storage import Storage, package_upload_key  # noqa: E402
from modelfarm import transfer  # noqa: E402
from tests.utils import Farm  # noqa: E402

GB = 1000**3
MB = 1024**2


def _random_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left:
            left -= out.write(os.urandom(min(left, 16 * MB)))


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _completed(storage: Storage, version_id: str) -> None:
    """Completes the version's upload in parts, with what POST /build calls."""
    with SessionLocal() as session:
        complete_in_parts(session, storage, session.get(ModelVersion, uuid.UUID(version_id)))
        session.commit()


def measure(gb: float = 4.0) -> dict:
    farm = Farm.register(f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench-password")
    storage, model = Storage(), farm.create_model()["id"]
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as scratch:
        package = Path(scratch) / "package.zip"
        _random_file(package, int(gb * GB))
        single = farm.call("POST", f"/api/models/{model}/versions").json()
        one_put = _timed(lambda: transfer.put(single["upload_url"], package, None))
        sealed_key = f"bench/{single['version']['id']}.zip"
        copy = _timed(lambda: storage.seal(package_upload_key(single["version"]["id"]),
                                           sealed_key, limit=2 * int(gb * GB)))  # fmt: skip
        storage.delete(sealed_key)

        in_parts = farm.call("POST", f"/api/models/{model}/versions").json()["version"]["id"]
        parts = _timed(lambda: transfer.upload_in_parts(farm.call, in_parts, package, None))
        complete = _timed(lambda: _completed(storage, in_parts))

        resumed = farm.call("POST", f"/api/models/{model}/versions").json()["version"]["id"]
        plan = farm.call("POST", f"/api/versions/{resumed}/upload",
                         json={"size": package.stat().st_size}).json()  # fmt: skip
        for part in plan["parts"][: len(plan["parts"]) // 2]:
            offset = (part["number"] - 1) * plan["part_bytes"]
            with httpx.Client() as http:
                transfer._put_range(http, part["url"], package, offset, part["bytes"], None)
        rest = _timed(lambda: transfer.upload_in_parts(farm.call, resumed, package, None))
    for version in (single["version"]["id"], in_parts, resumed):
        farm.call("DELETE", f"/api/versions/{version}")
    label = f"{gb:g}gb"
    results = {
        f"{label}_one_put_s": one_put,
        f"{label}_one_put_seal_copy_s": copy,
        f"{label}_in_parts_s": parts,
        f"{label}_in_parts_complete_s": complete,
        f"{label}_in_parts_over_one_put": parts / one_put,
        f"{label}_in_parts_sealed_over_one_put_sealed": (parts + complete) / (one_put + copy),
        f"{label}_in_parts_mb_per_s": gb * GB / MB / parts,
        f"{label}_resumed_second_half_s": rest,
        f"{label}_resumed_second_half_over_whole": rest / parts,
    }
    return {name: round(value, 3) for name, value in results.items()}


if __name__ == "__main__":
    print(measure(*(float(gb) for gb in sys.argv[1:2])))
