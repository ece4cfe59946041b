"""Metrics for Prometheus. Each process of the farm serves its own on an admin port of
127.0.0.1 (never the API's port): MODELFARM_METRICS_PORT_BASE plus its place in PORT_OFFSETS,
by the name scripts/up.sh gives it (MODELFARM_SERVICE). The API serves its requests and what
the database and the queues hold; each worker what it did. README's Operating section has the
scrape configuration.

Of a Celery worker, the process that runs the tasks serves them: the pool's child for a prefork
worker of one process (the build worker), the worker itself for a threads pool (the inference
worker, the reconciler). The API's several processes share their metrics through files
(prometheus-client's multiprocess mode: scripts/up.sh sets PROMETHEUS_MULTIPROC_DIR), and
whichever of them takes the port first serves the sum.
"""

import logging
import os
import threading

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from core import deadlines
from core.db import session_scope
from core.models import Job, ModelVersion
from core.queue import ROUTES
from core.settings import settings

HTTP_REQUESTS = Counter(
    "modelfarm_http_requests", "API requests answered", ["route", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "modelfarm_http_request_seconds", "Time to answer an API request", ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
)  # fmt: skip
BUILD_SECONDS = Histogram(
    "modelfarm_build_seconds", "Time from a build's start to its end", ["outcome", "reused"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)  # fmt: skip
JOB_QUEUE_WAIT_SECONDS = Histogram(
    "modelfarm_job_queue_wait_seconds", "Time a job waited in the queue before it started",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120),
)  # fmt: skip
JOB_RUN_SECONDS = Histogram(
    "modelfarm_job_run_seconds", "Time a job's sandboxed run took", ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120, 600),
)  # fmt: skip
SANDBOX_FAILURES = Counter(
    "modelfarm_sandbox_failures", "Sandboxed runs that failed, by why", ["reason"]
)
WARM_REQUESTS = Counter(
    "modelfarm_warm_requests", "Requests for a warm container: hit (one was idle), miss "
    "(one was started), standby (pre-pull's was taken), full (none could be: the job ran "
    "cold)", ["outcome"],
)  # fmt: skip
WARM_CONTAINERS = Gauge("modelfarm_warm_containers", "Warm containers held", ["state"])

PORT_OFFSETS = {"api": 0, "build-worker": 1, "inference-worker": 2, "reconciler": 3}
_served = threading.Lock()
_serving: list[int] = []


def port_of(service: str | None) -> int | None:
    if settings.metrics_port_base is None or service not in PORT_OFFSETS:
        return None
    return settings.metrics_port_base + PORT_OFFSETS[service]


def _shared() -> bool:
    """Whether this process is one of several that share their metrics through files."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def _registry() -> CollectorRegistry:
    """What this process serves and adds its collectors to."""
    if not _shared():
        return REGISTRY
    with _served:
        if not _summed:
            _summed.append(CollectorRegistry())
            multiprocess.MultiProcessCollector(_summed[0])
        return _summed[0]


_summed: list[CollectorRegistry] = []


def serve() -> None:
    """Starts this process's metrics server, once, if it has a port."""
    port = port_of(settings.service)
    registry = _registry()
    with _served:
        if port is None or _serving:
            return
        try:
            start_http_server(port, addr="127.0.0.1", registry=registry)
        except OSError:  # the farm's work matters more than its metrics
            if not _shared():  # else another process of this service serves the sum
                logging.getLogger(__name__).exception("metrics: cannot serve on 127.0.0.1:%d", port)
            return
        _serving.append(port)


class FarmState(Collector):
    """Read at each scrape (by the API's process): versions and jobs by status, and the
    messages waiting in each Celery queue."""

    def collect(self):
        for table, name in ((ModelVersion, "versions"), (Job, "jobs")):
            family = GaugeMetricFamily(f"modelfarm_{name}", f"{name} by status", labels=["status"])
            with session_scope() as session:
                counted = session.execute(select(table.status, func.count()).group_by(table.status))
                for status, count in counted:
                    family.add_metric([str(status)], count)
            yield family
        depth = GaugeMetricFamily("modelfarm_queue_depth", "Tasks waiting", labels=["queue"])
        client = deadlines.redis_client()
        try:
            for queue in sorted(set(ROUTES.values())):
                depth.add_metric([queue], client.llen(queue))
        finally:
            client.close()
        yield depth


_counting: list[FarmState] = []


def count_farm_state() -> None:
    """Adds the farm's state to this process's metrics, once (an app may start more than once
    in a process, as in tests)."""
    registry = _registry()
    with _served:
        if not _counting:
            _counting.append(FarmState())
            registry.register(_counting[0])
