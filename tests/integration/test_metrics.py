"""Prometheus metrics of the real stack, scraped from each process's admin port as Prometheus
would: the API's requests and what the database and queues hold, the build worker's builds,
the inference worker's jobs, sandbox failures and warm containers."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from core.metrics import port_of
from tests.integration.stack import wait_for
from tests.utils import inline

ECHO = "def predict(input_path, output_dir):\n    return {'size': input_path.stat().st_size}\n"
CRASH = "def predict(input_path, output_dir):\n    raise ValueError('no')\n"


def scrape(service: str) -> dict[tuple, float]:
    """Every sample a service's metrics show: (name, sorted labels) -> value."""
    text = httpx.get(f"http://127.0.0.1:{port_of(service)}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def grown(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


WARM = [{"outcome": outcome} for outcome in ("hit", "miss", "full")]


def test_every_process_serves_its_metrics_on_its_admin_port():
    for service in ("build-worker", "inference-worker", "reconciler"):
        assert any(name == "process_cpu_seconds_total" for name, _ in scrape(service)), service
    # The API's processes serve their sum, in which one process's figures have no place.
    assert any(name == "modelfarm_queue_depth" for name, _ in scrape("api"))


def test_a_build_and_jobs_are_counted_where_they_happen(new_user):
    farm = new_user()
    built_before, ran_before = scrape("build-worker"), scrape("inference-worker")
    versions = [farm.build({"predict.py": predict}) for predict in (ECHO, CRASH)]
    for version in versions:
        farm.submit(version["id"], {"Prefer": "wait=60"}, input=inline("hi"))

    built = scrape("build-worker")
    assert grown(built_before, built, "modelfarm_build_seconds_count", outcome="READY",
                 reused="False") == 2  # fmt: skip
    ran = wait_for(  # observed just after the job's row is final: a scrape may come first
        lambda: (after := scrape("inference-worker"))
        and grown(ran_before, after, "modelfarm_job_run_seconds_count", outcome="FAILED")
        and after,
        "the jobs counted", 30,
    )  # fmt: skip
    assert grown(ran_before, ran, "modelfarm_job_run_seconds_count", outcome="SUCCEEDED") == 1
    assert grown(ran_before, ran, "modelfarm_sandbox_failures_total", reason="crash") == 1
    assert grown(ran_before, ran, "modelfarm_job_queue_wait_seconds_count") == 2
    assert sum(grown(ran_before, ran, "modelfarm_warm_requests_total", **w) for w in WARM) == 2

    api = scrape("api")
    posts = {"route": "/api/jobs", "method": "POST", "status": "201"}
    assert value(api, "modelfarm_http_requests_total", **posts) >= 2
    assert value(api, "modelfarm_jobs", status="SUCCEEDED") >= 1
    assert value(api, "modelfarm_versions", status="READY") >= 2
    assert ("modelfarm_queue_depth", (("queue", "build"),)) in api
