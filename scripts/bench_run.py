"""Run benchmark on the digits example: the model's own predict time in-process, a bare
`docker run` of its image, the farm's job latency (run request to outputs listed), the farm's
overhead as a ratio to the bare run, and jobs per minute with 1 and 2 jobs at once.

    .venv/bin/python scripts/bench_run.py       (needs the stack: scripts/up.sh)
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.lifecycle import JobStatus, VersionStatus
from tests.utils import Farm  # noqa: E402

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits-onnx"
SAMPLE = DIGITS / "samples" / "digit-3.png"
PACKAGE_FILES = ("predict.py", "requirements.txt", "modelfarm.yaml", "model.onnx")
REPEATS = 8


def in_process() -> dict:
    sys.path.insert(0, str(DIGITS))
    import predict

    started = time.perf_counter()
    predictor = predict.Predictor()
    predictor.setup()
    setup = time.perf_counter() - started
    times = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(REPEATS):
            started = time.perf_counter()
            predictor.predict(image=SAMPLE, top_k=3, output_dir=Path(out))
            times.append(time.perf_counter() - started)
    return {"setup_s": setup, "predict_s": statistics.median(times)}


def bare_docker_run(image: str) -> float:
    """The same image, input on stdin, with the docker CLI and no farm around it."""
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        subprocess.run(
            ["docker", "run", "--rm", "-i", "--network", "none", "--tmpfs", "/output", image],
            input=SAMPLE.read_bytes(), capture_output=True, check=True,
        )  # fmt: skip
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def farm_job(farm: Farm, version_id: str) -> float:
    """Seconds from the run request to the outputs being listed (input already uploaded)."""
    created = farm.http.post("/api/jobs", json={"version_id": version_id}).json()
    httpx.put(created["upload_url"], content=SAMPLE.read_bytes()).raise_for_status()
    job_id = created["job"]["id"]
    started = time.perf_counter()
    farm.http.post(f"/api/jobs/{job_id}/run").raise_for_status()
    job = farm.wait_job(job_id, timeout=300)
    if job["status"] != JobStatus.SUCCEEDED:
        raise SystemExit(f"job failed: {job['error']}")
    farm.http.get(f"/api/jobs/{job_id}/outputs").raise_for_status()
    return time.perf_counter() - started


def jobs_per_minute(farm: Farm, version_id: str, concurrent: int, jobs: int = 8) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrent) as pool:
        list(pool.map(lambda _: farm_job(farm, version_id), range(jobs)))
    return jobs / (time.perf_counter() - started) * 60


def measure() -> dict:
    farm = Farm.register(f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench-password")
    version = farm.build({name: (DIGITS / name).read_bytes() for name in PACKAGE_FILES})
    if version["status"] != VersionStatus.READY:
        raise SystemExit(f"build failed: {version['error']}")
    image = version["image_ref"]
    own = in_process()
    bare = bare_docker_run(image)
    latency = statistics.median(farm_job(farm, version["id"]) for _ in range(REPEATS))
    return {
        "predict_in_process_s": round(own["predict_s"], 5),
        "setup_in_process_s": round(own["setup_s"], 4),
        "bare_docker_run_s": round(bare, 3),
        "farm_job_latency_s": round(latency, 3),
        "farm_over_bare_docker_run": round(latency / bare, 2),
        "jobs_per_minute_1_concurrent": round(jobs_per_minute(farm, version["id"], 1), 1),
        "jobs_per_minute_2_concurrent": round(jobs_per_minute(farm, version["id"], 2), 1),
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=1))
