"""The one settings object. Every field can be set as MODELFARM_<FIELD> in the environment or .env.

`python -m core.settings` prints the settings as shell assignments, so the stack scripts read the
same values as the services instead of repeating the defaults.

Secrets have no default: the local stack generates them on first start into
<data dir>/secrets (core/secrets.py), one file per setting, read here after the environment and
.env; a deployment passes its own in the environment.
"""

import os
import shlex
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.secrets import secrets_dir

MIN_SECRET_LENGTH = 32


def _existing_secrets_dir() -> str | None:
    folder = secrets_dir()
    return str(folder) if folder.is_dir() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MODELFARM_",
        env_file=".env",
        extra="ignore",
        secrets_dir=_existing_secrets_dir(),
    )

    data_dir: str = ".farm"

    database_url: str = "sqlite:///.farm/modelfarm.db"
    # Connections each process keeps open to the database (and 10 more at a peak, closed after):
    # one per request or task it serves at once, so that none waits for a connection or opens
    # one per request.
    database_pool_size: int = Field(20, ge=1)
    # Deadlines: how long the farm waits on one call to a dependency (PostgreSQL, Redis, object
    # storage, the registry, the Docker engine) before counting it down: to connect, and for
    # each answer (a statement, a command, each read of a body). On the API's request path they
    # are short and never retried, so a request that needs a hung part answers 503 within
    # seconds (its reads run on the event loop: one stuck query would hold up its process).
    # Workers wait longer, since they stream big data, and retry with backoff (workers/retry.py).
    request_deadline_s: float = Field(2.0, gt=0, le=30)
    worker_deadline_s: float = Field(60.0, gt=0, le=600)
    # GET /health answers within this, its checks run side by side, each bounded on its own.
    health_budget_s: float = Field(3.0, gt=0, le=30)
    # The longest a request or a task waits for a pooled database connection.
    database_pool_timeout_s: float = Field(5.0, gt=0, le=60)
    redis_url: str = "redis://127.0.0.1:6379/0"

    # Logs (core/logs.py): JSON lines, or readable lines for a developer's console.
    log_format: Literal["json", "console"] = "json"
    # Which process of the farm this is (scripts/up.sh names each), and the first of the admin
    # ports on 127.0.0.1 where the processes serve their metrics (core/metrics.py); None: none.
    service: str | None = None
    metrics_port_base: int | None = Field(9471, ge=1, le=65000)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The API's worker processes (scripts/up.sh): one per core serves the most requests.
    api_workers: int = Field(os.cpu_count() or 2, ge=1)

    s3_endpoint: str = "127.0.0.1:8333"
    # The host:port clients reach; presigned URLs are signed for it. Empty means s3_endpoint.
    s3_public_endpoint: str = ""
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "modelfarm"
    # Capacity of the local stack's object store (scripts/up.sh); 0: half the data disk's free
    # space. It must hold four packages and four inputs at their limits.
    s3_store_mb: int = Field(0, ge=0)
    # Where the store's free disk space is read (a SeaweedFS volume server's /status); empty:
    # not checked. /health reports object storage degraded below one upload at the limit, and
    # a package upload in parts that would not fit is refused (507) before it starts.
    s3_capacity_url: str = "http://127.0.0.1:8080/status"
    # The object store's other servers' ports on its host (SeaweedFS's master, filer and
    # volume server, their gRPC ports and the S3 gateway's, as scripts/up.sh starts them):
    # with every service of the farm, never a webhook's target (core/endpoints.py).
    s3_server_ports: list[int] = [9333, 8888, 8080, 19333, 18888, 18080, 18333]
    presigned_url_lifetime_s: int = Field(3600, ge=60, le=7 * 24 * 3600)

    # The registry as the Docker engine names it in image references (host:port).
    registry: str = "127.0.0.1:5000"
    # Where the farm itself reaches the registry's HTTP API. Empty: http://<registry> on
    # loopback, https://<registry> elsewhere. Under docker compose: http://registry:5000.
    registry_api_url: str = ""
    # The registry's storage (its storage.filesystem.rootdirectory) when the build hosts share
    # it: layers are put straight into it at the speed of the disk (workers/build/blobs.py)
    # instead of through its HTTP API. Empty: through the API. scripts/up.sh shares its own.
    registry_storage_dir: str = ""
    base_image: str = "modelfarm/base:bookworm"
    # Who builds a version's Dockerfile: the farm's executor (workers/build/executor.py: at
    # registry speed), or the Docker engine (`docker build --network none`, then a push), the
    # reference the executor's images are compared with.
    builder: Literal["executor", "engine"] = "executor"

    # Signs access tokens: at least 32 characters; the API refuses to start without one.
    jwt_secret: str = ""
    jwt_lifetime_minutes: int = Field(24 * 60, ge=1)
    # Password hashes computed at once per API process (argon2 is slow on purpose).
    password_hash_concurrency: int = Field(2, ge=1)
    # Failed logins per 15 minutes, per (account, client address) and per client address, and
    # registrations per hour per client address, before 429.
    login_failures_per_account: int = Field(10, ge=1)
    login_failures_per_address: int = Field(50, ge=1)
    registrations_per_address: int = Field(100, ge=1)
    # Per user, before 429: write requests (POST, PUT, DELETE) per minute, and jobs and builds
    # queued or running at once (a batch is one job), so that no user starves the rest.
    writes_per_minute: int = Field(6000, ge=1)
    max_active_jobs_per_user: int = Field(100, ge=1)
    max_active_builds_per_user: int = Field(10, ge=1)
    # Per user, before 413: the bytes of their packages and their jobs' input and output files.
    storage_quota_mb: int = Field(10 * 1024, ge=1)

    # A package fits one presigned PUT (S3 takes up to 5 GiB in one).
    max_package_bytes: int = Field(4 * 1024**3, ge=1)
    max_input_bytes: int = Field(64 * 1024**2, ge=1)
    # A package uploaded in parts (core/multipart.py) comes in parts of this size (more when
    # it would take over S3's 10,000 parts); S3 takes no part under 5 MiB but the last.
    upload_part_bytes: int = Field(64 * 1024**2, ge=5 * 1024**2)
    # A job's input(s) sent inline, base64 in the JSON body: the cap on the whole body, and the
    # most items one batch job may have.
    max_inline_input_bytes: int = Field(8 * 1024**2, ge=1)
    max_batch_items: int = Field(10_000, ge=1)
    # Limits on a package's contents, checked before anything is extracted.
    package_max_entries: int = Field(10_000, ge=1)
    package_max_file_bytes: int = Field(4 * 1024**3, ge=1)
    package_max_unpacked_bytes: int = Field(8 * 1024**3, ge=1)
    package_max_compression_ratio: int = Field(200, ge=1)

    # Builds resolve requirements to wheels on the worker, from this index only.
    pip_index_url: str = "https://pypi.org/simple"
    cache_dir: str = ".farm/cache"
    # Each worker host's engine images and wheels, kept under this many GB, least recently used
    # removed first (workers/cache.py); what is in use stays.
    worker_cache_gb: float = Field(20, gt=0)
    # Each inference host pulls a version's image as soon as it is READY (workers/run/
    # prepull.py), and starts a standby container of it, so that its first job there pays no
    # pull and no container start.
    prepull: bool = False
    # Each build host's copies of dependency sets' virtualenvs that smoke tests run on
    # (workers/build/venvs.py), this many kept, least recently used removed first.
    worker_venv_copies: int = Field(8, ge=1)

    # The container runtime of sandboxes: runc (the host's kernel, namespaces and cgroups) or
    # runsc (gVisor: a kernel of its own in user space between the model and the host's). A
    # model may ask for a stronger one than this, never a weaker one.
    sandbox_runtime: Literal["runc", "runsc"] = "runc"
    # Whether the API's /health checks the Docker engine of its own host: true where the API
    # and the workers share one machine; false where engines live on worker hosts only.
    health_checks_docker: bool = True
    sandbox_cpus: float = Field(1.0, gt=0)
    sandbox_memory_mb: int = Field(1024, ge=32)
    sandbox_pids: int = Field(128, ge=8)
    sandbox_timeout_s: int = Field(120, ge=1)
    sandbox_output_mb: int = Field(64, ge=1)
    sandbox_tmp_mb: int = Field(256, ge=16)
    sandbox_log_kb: int = Field(256, ge=4)

    build_time_limit_s: int = Field(1800, ge=30)
    # Jobs one inference worker runs at once (threads sharing one warm pool).
    inference_concurrency: int = Field(os.cpu_count() or 2, ge=1)

    # Warm sandboxes (workers/run/pool.py): kept per (image, user, limits); off means one
    # container per job.
    warm_enabled: bool = True
    warm_idle_s: int = Field(300, ge=1)
    warm_max: int = Field(8, ge=0)
    warm_memory_mb: int = Field(4096, ge=0)

    # The farm's own faults (a dependency down) are retried this many times, the waits doubling
    # to fill the window, before a version or job is failed with "try again later".
    farm_retry_attempts: int = Field(5, ge=1, le=20)
    farm_retry_window_s: float = Field(120, ge=0)
    # A worker's claim on a version or job (workers/leases.py) is renewed every third of this
    # while the worker lives; a dead or cut-off worker's expires within it, and the work is taken
    # over by another worker.
    lease_ttl_s: int = Field(30, ge=3)
    # The reconciler runs this often; it re-sends work queued longer than reconcile_queued_s
    # whose message is gone, and work in progress whose claim expired.
    reconcile_interval_s: int = Field(15, ge=1)
    reconcile_queued_s: int = Field(60, ge=1)
    # Retention (workers/retention.py, in the reconciler's pass): a job's files are removed this
    # many days after its end (its row stays), and a version or job still waiting for its
    # upload this many hours after its creation is removed.
    job_retention_days: int = Field(7, ge=1)
    upload_expiry_hours: int = Field(24, ge=1)
    # A job's or version's live events (core/streams.py) are kept this long after the last one;
    # later its event stream shows the row alone.
    events_kept_hours: int = Field(24, ge=1)
    # The registry's garbage collection, run by the reconciler this often (0: never): the
    # command, run from the project's folder, frees the blobs removed images left.
    registry_gc_interval_s: int = Field(24 * 3600, ge=0)
    registry_gc_command: str = "bash scripts/registry_gc.sh"

    # Webhooks (core/webhooks.py): the waits between a delivery's attempts (the first is at
    # once), each attempt's timeout, and whether destinations on loopback and private networks
    # are allowed (the tests receive on 127.0.0.1; link-local and metadata never are).
    webhook_retry_delays_s: list[int] = Field([5, 30, 120, 300, 600], min_length=4)
    webhook_timeout_s: float = Field(5, gt=0, le=30)
    webhook_allow_private: bool = False

    @model_validator(mode="after")
    def _check_consistency(self) -> "Settings":
        if self.jwt_secret and len(self.jwt_secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"MODELFARM_JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters"
            )
        if self.max_input_bytes >= self.sandbox_tmp_mb * 1024**2:
            # The input is written into the sandbox's /tmp, so it has to fit there.
            raise ValueError("MODELFARM_MAX_INPUT_BYTES must be below MODELFARM_SANDBOX_TMP_MB")
        return self

    @property
    def registry_base_url(self) -> str:
        if self.registry_api_url:
            return self.registry_api_url.rstrip("/")
        loopback = self.registry.startswith(("127.", "localhost", "[::1]"))
        return f"{'http' if loopback else 'https'}://{self.registry}"

    @property
    def s3_client_endpoint(self) -> str:
        return self.s3_public_endpoint or self.s3_endpoint

    @property
    def job_time_limit_s(self) -> int:
        # The sandbox's own timeout fires first; the task limit only catches a stuck worker.
        return self.sandbox_timeout_s + 300


settings = Settings()


def as_shell() -> str:
    """Settings as `MODELFARM_X='value'` lines for the stack scripts to eval."""
    lines = []
    for name, value in settings.model_dump().items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        lines.append(f"MODELFARM_{name.upper()}={shlex.quote(text)}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(as_shell())
