"""Real-size models: weights of random bytes (as incompressible as float tensors) and a predict.py
whose setup() reads them all, built by the farm and, side by side in the same run, by
`docker build` + `docker push` of the same files on the same engine and registry.

For each size: the first build (dependencies seen), two code-only changes, a weights-only change,
each pushed as `modelfarm push` sends it (the weights by their content, core/contents.py), and
the code-only change sent as one ZIP with the weights in it (as before contents);
the build worker's peak resident memory over its idle size (VmHWM after clear_refs), the floor
(sha256 of the weights + a copy of them into the registry's storage) and the CPU-seconds the
machine spent on it and on the first build (these two cores are the bound of both), and the
first job on a host without the image against `docker pull` + the model's setup, and against the
setup alone on a host with it: pulled and flushed (prepull.prepare, the job starts its
container), and as the inference worker's pre-pull leaves it (MODELFARM_PREPULL: the image and
a standby container). For the largest, the registry's bytes
for three versions sharing the weights against one.

    .venv/bin/python scripts/bench_big.py [GB ...]     (needs the stack: scripts/up.sh, with
                                                        its default package limit of 4 GiB)
"""

import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_build import busy_cpu_s, registry_bytes, settle, timed_build  # noqa: E402

from core import events  # noqa: E402
from core.registry import engine_name  # noqa: E402
from core.settings import settings  # noqa: E402
from modelfarm.packing import BY_CONTENT_ABOVE, pack  # noqa: E402
from tests.integration import stack  # noqa: E402
from tests.integration.test_big_models import PREDICT, package_of  # noqa: E402
from tests.utils import ROOT, Farm  # noqa: E402
from workers.run import prepull, sandbox  # noqa: E402

SIZES_GB = (0.1, 1.0, 2.0)
RUNS = 3
MB = 1024**2
DOCKERFILE = "FROM {base}\nCOPY weights.bin /model/\nCOPY predict.py /model/\n"


def _weights(path: Path, size: int) -> None:
    with path.open("wb") as out:
        for start in range(0, size, 16 * MB):
            out.write(os.urandom(min(16 * MB, size - start)))


def _farm_builds(farm: Farm, folder: Path, weights: Path, results: dict, label: str) -> list:
    """First build, code-only, weights-only, each pushed as `modelfarm push` sends it (the
    weights by their content); and the code-only change sent as one ZIP, as before contents.
    The versions made."""
    model = farm.create_model()["id"]
    pids = stack.peaks_reset("build-worker")
    idle_kb = stack.memory_kb(pids, "VmRSS")
    cpu: dict[str, float] = {}
    results[f"{label}_first_build_s"], first = _timed_push(farm, model, folder, weights, "a", cpu)
    results[f"{label}_first_build_cpu_s"] = cpu["s"]
    peak_kb = stack.memory_kb(pids, "VmHWM") - idle_kb
    results[f"{label}_worker_peak_rss_over_idle_mb"] = peak_kb / 1024
    results[f"{label}_code_only_s"], code = _timed_push(farm, model, folder, weights, "b")
    # another code-only change: the first comes right after the first build, whose smoke
    # test's memory limit may have evicted part of the weights from the page cache
    results[f"{label}_code_only_again_s"], again = _timed_push(farm, model, folder, weights, "c")
    with weights.open("r+b") as changing:  # one byte of the weights changed
        first_byte = changing.read(1)
        changing.seek(0)
        changing.write(b"\0" if first_byte == b"\xff" else b"\xff")
    results[f"{label}_weights_only_s"], _ = _timed_push(farm, model, folder, weights, "d")
    # Last: its seal copies the ZIP in the store and deletes the upload, whose space the store
    # then reclaims by rewriting its volumes (SeaweedFS's vacuum), in the next builds' time.
    results[f"{label}_code_only_whole_zip_s"], _ = timed_build(
        farm, model, package_of(folder, weights, "b-zip")
    )
    return [first, code, again]


def _timed_push(farm: Farm, model: str, folder: Path, weights: Path, tag: str, cpu=None):
    """timed_build of PREDICT (marked with tag) and the weights, sent by `modelfarm push`'s
    packing: the weights by their content, uploaded (if the farm lacks them) before the clock."""
    source = folder / f"model-{tag}"
    source.mkdir()
    (source / "predict.py").write_text(PREDICT + f"# {tag}\n")
    os.link(weights, source / "weights.bin")
    packed = pack(source, folder / f"push-{tag}.zip", by_content_above=BY_CONTENT_ABOVE)
    zipped = folder / f"push-{tag}.zip"
    return timed_build(farm, model, zipped, by_content=packed.by_content, cpu=cpu)


def _docker_builds(client, folder: Path, weights: Path, results: dict, label: str) -> None:
    """docker build + docker push of the same files, first and after a code-only change."""
    context = folder / "docker-context"
    context.mkdir()
    os.link(weights, context / "weights.bin")
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=settings.base_image))
    repository = engine_name(f"bench/docker-{uuid.uuid4().hex[:8]}")
    for row, tag in (("first", "a"), ("code_only", "b")):
        (context / "predict.py").write_text(PREDICT + f"# {tag}\n")
        settle()  # as for the farm (timed_build)
        started = time.perf_counter()
        client.images.build(path=str(context), tag=f"{repository}:{tag}", rm=True)
        built = time.perf_counter()
        for line in client.images.push(repository, tag, stream=True, decode=True):
            if "error" in line:
                raise SystemExit(f"docker push: {line['error']}")
        results[f"{label}_docker_{row}_build_s"] = built - started
        results[f"{label}_docker_{row}_push_s"] = time.perf_counter() - built
    for tag in ("a", "b"):
        client.images.remove(f"{repository}:{tag}", force=True)


def _floor(weights: Path) -> tuple[float, float]:
    """sha256 of the weights and a copy of them into the registry's storage (its disk): its
    seconds and the CPU-seconds the machine spent."""
    target = ROOT / settings.data_dir / "registry" / f"floor-{uuid.uuid4().hex}"
    started, busy = time.perf_counter(), busy_cpu_s()
    with weights.open("rb") as source:
        hashlib.file_digest(source, "sha256")
    shutil.copyfile(weights, target)
    os.sync()
    seconds, cpu_s = time.perf_counter() - started, busy_cpu_s() - busy
    target.unlink()
    return seconds, cpu_s


def _forget(client, image: str) -> None:
    """The image off the engine, with its sandboxes (warm or standby), which hold it."""
    for container in stack.sandboxes_of(client, image):
        sandbox.remove(container)
    with suppress(docker.errors.ImageNotFound):
        client.images.remove(image, force=True)


def _first_job(farm: Farm, client, version: dict, weights: Path, results: dict, label: str):
    """The first job on an engine without the image, against docker pull + the setup; and the
    first job on an engine that has the image, against the setup's best of RUNS (each the
    median of RUNS): pulled and flushed to disk (prepull.prepare), and as the inference
    worker's pre-pull (MODELFARM_PREPULL) leaves it, with a standby container."""
    image = version["image_ref"]
    _forget(client, image)  # builds put images together in the registry
    results[f"{label}_first_job_s"] = _job_s(farm, version, "x")
    _forget(client, image)
    started = time.perf_counter()
    client.images.pull(image)
    results[f"{label}_docker_pull_s"] = time.perf_counter() - started
    present, prepulled = [], []
    for attempt in range(RUNS):
        _forget(client, image)
        prepull.prepare(client, image)
        present.append(_job_s(farm, version, f"y{attempt}"))
    with stack.prepulling():
        for attempt in range(RUNS):
            _forget(client, image)
            events.version_ready(version["id"], image)  # as the build worker tells it
            stack.wait_for(lambda: stack.sandboxes_of(client, image), "a standby", 600)
            time.sleep(1)  # its runner started, waiting for a job
            prepulled.append(_job_s(farm, version, f"z{attempt}"))
    results[f"{label}_first_job_image_present_s"] = statistics.median(present)
    results[f"{label}_first_job_prepulled_s"] = statistics.median(prepulled)
    results[f"{label}_setup_s"] = min(_setup_s(weights) for _ in range(RUNS))


def _job_s(farm: Farm, version: dict, text: str) -> float:
    """The seconds of one job of the version, which must succeed."""
    started = time.perf_counter()
    job = farm.predict(version["id"], {"text": text}, wait_s=600)
    seconds = time.perf_counter() - started
    if job["status"] != "SUCCEEDED":
        raise SystemExit(f"job failed: {job['error']}")
    return seconds


def _setup_s(weights: Path) -> float:
    """What the model's setup() does, in process: its best of RUNS is with the weights in the
    page cache, as a job finds them after pre-pull (the pull has just written them)."""
    started = time.perf_counter()
    with weights.open("rb") as source:
        hashlib.file_digest(source, "sha256")
    return time.perf_counter() - started


def measure_size(farm: Farm, client, gb: float) -> dict:
    label = f"{gb:g}gb"
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=ROOT / settings.data_dir) as scratch:
        folder = Path(scratch)
        weights = folder / "weights.bin"
        _weights(weights, int(gb * 1024**3))
        settle()
        results[f"{label}_floor_s"], results[f"{label}_floor_cpu_s"] = _floor(weights)
        _docker_builds(client, folder, weights, results, label)
        versions = _farm_builds(farm, folder, weights, results, label)
        _first_job(farm, client, versions[0], weights, results, label)
        three, _ = registry_bytes(versions)
        one, _ = registry_bytes(versions[:1])
        results[f"{label}_registry_three_versions_over_one"] = three / one
    first, floor = results[f"{label}_first_build_s"], results[f"{label}_floor_s"]
    docker_first = (
        results[f"{label}_docker_first_build_s"] + results[f"{label}_docker_first_push_s"]
    )
    results[f"{label}_first_over_docker"] = first / docker_first
    results[f"{label}_first_over_floor"] = first / floor
    results[f"{label}_first_cpu_over_floor_cpu"] = (
        results[f"{label}_first_build_cpu_s"] / results[f"{label}_floor_cpu_s"]
    )
    results[f"{label}_weights_only_over_first"] = results[f"{label}_weights_only_s"] / first
    docker_code_only = (
        results[f"{label}_docker_code_only_build_s"] + results[f"{label}_docker_code_only_push_s"]
    )
    results[f"{label}_code_only_over_docker"] = results[f"{label}_code_only_s"] / docker_code_only
    pull_and_setup = results[f"{label}_docker_pull_s"] + results[f"{label}_setup_s"]
    results[f"{label}_first_job_over_pull_and_setup"] = (
        results[f"{label}_first_job_s"] / pull_and_setup
    )
    for case in ("image_present", "prepulled"):
        results[f"{label}_first_job_{case}_over_setup"] = (
            results[f"{label}_first_job_{case}_s"] / results[f"{label}_setup_s"]
        )
    return {name: round(value, 3) for name, value in results.items()}


def measure(sizes_gb=SIZES_GB) -> dict:
    client = docker.from_env(timeout=1800)
    try:
        results = {}
        for gb in sizes_gb:  # a user each: four packages of 2 GB fill most of a quota
            farm = Farm.register(f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench-password")
            results |= measure_size(farm, client, gb)
            print(results, flush=True)
        return results
    finally:
        client.close()


if __name__ == "__main__":
    print(measure([float(gb) for gb in sys.argv[1:]] or SIZES_GB))
