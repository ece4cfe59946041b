"""Stopping and starting the real processes of the local stack, for the outage drills."""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import redis

from core.events import VERSION_READY_CHANNEL
from core.settings import settings
from tests.utils import API_URL, ROOT
from workers.build.smoke import smoke_test_name
from workers.run.sandbox import SANDBOX_LABEL, USER_LABEL

RUN_DIR = ROOT / settings.data_dir / "run"
LOGS_DIR = ROOT / settings.data_dir / "logs"
POSTGRES_STARTED = RUN_DIR / "postgresql.started"


def pid_of(service: str) -> int:
    return int((RUN_DIR / f"{service}.pid").read_text())


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in found.split()]


def memory_kb(pids: list[int], field: str) -> int:
    """The sum over these processes of a memory figure of /proc/<pid>/status (VmRSS, VmHWM)."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                total += int(line.split()[1])
    return total


def peaks_reset(service: str) -> list[int]:
    """A service's processes (a Celery worker and its pool's children, which do the work),
    their peak resident sizes reset (clear_refs 5), so that VmHWM tells the peak from now."""
    pid = pid_of(service)
    pids = [pid, *children_of(pid)]
    for each in pids:
        Path(f"/proc/{each}/clear_refs").write_text("5")
    return pids


def api_workers() -> set[int]:
    """The API's worker processes (uvicorn --workers starts them, and a helper of its own)."""
    return {pid for pid in children_of(pid_of("api")) if b"spawn_main" in _command_line(pid)}


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:  # gone meanwhile
        return b""


def kill(service: str, *, whole_tree: bool = True) -> None:
    """SIGKILL a service (a crash), and its children with it."""
    pid = pid_of(service)
    for victim in [*children_of(pid), pid] if whole_tree else [pid]:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not alive(pid), f"{service} (pid {pid}) to die", 10, 0.1)


@contextlib.contextmanager
def frozen(service: str) -> Iterator[None]:
    """The service stopped in its tracks for the block, every process of it (SIGSTOP: how a
    stalled disk, a full network buffer or a long pause looks), and resumed (SIGCONT) after,
    even when the block fails. "postgresql" is the cluster the stack uses."""
    pid = _postmaster() if service == "postgresql" else pid_of(service)
    processes = [pid, *children_of(pid)]
    for each in processes:
        os.kill(each, signal.SIGSTOP)
    try:
        yield
    finally:
        for each in processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGCONT)


def _postmaster() -> int:
    version, cluster, _online = _cluster()
    return int(Path(f"/var/run/postgresql/{version}-{cluster}.pid").read_text().split()[0])


def kill_pid(pid: int) -> None:
    """SIGKILL one process, and wait until it is gone."""
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), f"pid {pid} to die", 10, 0.1)


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, dead but not yet reaped, does not)."""
    return _state(pid) not in ("Z", "gone")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return "gone"


def up() -> None:
    """scripts/up.sh: starts whatever is not running and waits for /health."""
    done = subprocess.run(["bash", str(ROOT / "scripts/up.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def sandboxes_of(docker_client, image_ref: str) -> list:
    """The running sandboxes of an image (of any user, standbys too): none if it is not here."""
    try:
        image_id = docker_client.images.get(image_ref).id
    except docker.errors.ImageNotFound:
        return []
    found = docker_client.containers.list(filters={"label": SANDBOX_LABEL})
    return [container for container in found if container.attrs["Image"] == image_id]


@contextlib.contextmanager
def prepulling() -> Iterator[None]:
    """The inference worker restarted with MODELFARM_PREPULL=true, listening for READY versions
    (up.sh waits for the API only: a version READY before it listens is not pre-pulled), and
    back without it after."""
    os.environ["MODELFARM_PREPULL"] = "true"
    try:
        kill("inference-worker")
        up()
        wait_for(_version_ready_listened, "the inference worker listening for READY versions", 60)
        yield
    finally:
        del os.environ["MODELFARM_PREPULL"]
        kill("inference-worker")
        up()


def _version_ready_listened() -> bool:
    client = redis.Redis.from_url(settings.redis_url)
    [(_channel, listeners)] = client.pubsub_numsub(VERSION_READY_CHANNEL)
    return listeners > 0


def postgres(action: str) -> None:
    """Stops or starts the PostgreSQL cluster the stack uses (nothing if it already is)."""
    version, cluster, online = _cluster()
    if online == (action == "start"):
        return
    subprocess.run(["pg_ctlcluster", version, cluster, action], check=True, capture_output=True)


def _cluster() -> tuple[str, str, bool]:
    listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True)
    version, cluster, _port, status = listed.stdout.split()[:4]
    return version, cluster, status == "online"


def wait_for(condition, what: str, timeout: float = 180, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(every)
    return found


def wait_for_sandbox(docker_client, *, work: str = "", user: str = "", timeout: float = 180):
    """Waits for a running sandbox: a build's smoke test (by its version id: the container is
    named after it, whether it started then or ahead) or a user's warm container (the first job
    of that user on a version runs in a container made for it)."""
    found = {"name": f"^/{smoke_test_name(work)}$"} if work else {"label": f"{USER_LABEL}={user}"}
    return wait_for(lambda: docker_client.containers.list(filters=found), "a sandbox", timeout)


@contextlib.contextmanager
def api_process(port: int, log: Path, **settings_: str) -> Iterator[str]:
    """The API as one more process beside the stack's, on port, with these settings (such as
    WRITES_PER_MINUTE="8" for MODELFARM_WRITES_PER_MINUTE); its URL once it answers."""
    env = {**os.environ, **{f"MODELFARM_{name}": value for name, value in settings_.items()}}
    env["MODELFARM_SERVICE"] = "extra-api"  # no metrics port of the stack's
    with log.open("w") as output:
        api = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "uvicorn"), "api.main:app", "--host", "127.0.0.1",
             "--port", str(port), "--no-proxy-headers", "--no-access-log"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _answers(url) or api.poll() is not None, "the extra API", 60)
            assert api.poll() is None, f"the extra API exited: see {log}"
            yield url
        finally:
            api.terminate()
            api.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def api_trouble() -> str | None:
    """None while the local stack's API answers /health with 200; else what it says or why it
    does not answer, and the end of its log."""
    try:
        health = httpx.get(f"{API_URL}/health", timeout=30)
        if health.status_code == 200:
            return None
        trouble = f"answers /health with {health.status_code}: {health.text}"
    except httpx.TransportError as error:
        trouble = f"is not answering ({error})"
    log = LOGS_DIR / "api.log"
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
    return f"The local stack's API at {API_URL} {trouble}; {log} ends:\n{tail}"
