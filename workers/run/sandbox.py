"""Running untrusted model code in a locked-down container.

The container has no network, runs as an unprivileged user with no capabilities, cannot gain
privileges, has a read-only root filesystem, bounded CPU, memory and process count, and only two
small writable tmpfs mounts. It gets no environment from the worker. Its input arrives on stdin
and its outputs leave on stdout, so no path on the worker's host is shared with it; this works
the same with the worker in a container that uses the host's Docker socket.
"""

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Required, TypedDict, Unpack

import docker
import requests
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.types import LogConfig

from core.settings import settings
from runner.protocol import (
    MODEL_UID,
    OUTPUT_DIR,
)
from workers.images import read_timed_out
from workers.run.cancels import Watch
from workers.run.live import Live
from workers.run.live import follow as live_follow
from workers.run.outputs import read_archive, unpack_outputs

SANDBOX_LABEL = "org.modelfarm.sandbox"
OWNER_LABEL = "org.modelfarm.owner"
# The version or job a container works for: a retry removes what a dead attempt left running.
WORK_LABEL = "org.modelfarm.work"
# The user a warm container serves (it serves no one else).
USER_LABEL = "org.modelfarm.user"


@dataclass(frozen=True)
class Limits:
    cpus: float
    memory_mb: int
    pids: int
    timeout_s: int
    output_mb: int
    tmp_mb: int
    log_kb: int
    runtime: str = "runc"

    @classmethod
    def for_model(cls, config: dict | None) -> "Limits":
        """The server's limits, narrowed by the model's modelfarm.yaml (already within caps)."""
        config = config or {}
        return cls(
            cpus=config.get("cpus") or settings.sandbox_cpus,
            memory_mb=config.get("memory_mb") or settings.sandbox_memory_mb,
            pids=settings.sandbox_pids,
            timeout_s=config.get("timeout_s") or settings.sandbox_timeout_s,
            output_mb=settings.sandbox_output_mb,
            tmp_mb=settings.sandbox_tmp_mb,
            log_kb=settings.sandbox_log_kb,
            runtime=strongest(config.get("runtime"), settings.sandbox_runtime),
        )


# Container runtimes, weakest first.
RUNTIMES = ("runc", "runsc")
FOLLOW_END_S = 5  # how long the end of a one-shot sandbox's output may take to be shown live


def strongest(*runtimes: str | None) -> str:
    return max((r for r in runtimes if r), key=RUNTIMES.index, default=RUNTIMES[0])


@dataclass
class RunResult:
    exit_code: int | None
    timed_out: bool
    oom_killed: bool
    stdout: bytes
    stderr_tail: str
    seconds: float
    # A warm container's answer: the outputs' tar as it came (None from a one-shot run, whose
    # outputs are in stdout), and why the framing broke, if it did.
    archive: bytes | None = None
    protocol_error: str | None = None
    container_died: bool = False  # a warm container that did not survive the request
    _files: dict[str, bytes] | None = field(default=None, repr=False)

    def output_files(self, max_bytes: int) -> dict[str, bytes]:
        """The outputs, checked entry by entry (OutputError); read once however often asked."""
        if self._files is None:
            if self.archive is not None:
                self._files = read_archive(self.archive, max_bytes)
            else:
                self._files = unpack_outputs(self.stdout, max_bytes)
        return self._files


def container_options(limits: Limits, owner: str, work: str, user: str = "") -> dict:
    uid = f"{MODEL_UID}:{MODEL_UID}"
    # stdout carries base64 outputs (4/3 of their size) plus markers; more means a broken run.
    log_bytes = limits.output_mb * 1024**2 * 3 // 2 + limits.log_kb * 1024 * 4
    return {
        "user": uid,
        "runtime": limits.runtime,
        "network_mode": "none",
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": f"{limits.memory_mb}m",
        "memswap_limit": f"{limits.memory_mb}m",
        "pids_limit": limits.pids,
        "nano_cpus": int(limits.cpus * 1e9),
        "tmpfs": {
            "/tmp": f"size={limits.tmp_mb}m,mode=1777",
            OUTPUT_DIR: f"size={limits.output_mb}m,uid={MODEL_UID},gid={MODEL_UID},mode=0700",
        },
        "environment": {},
        "labels": {SANDBOX_LABEL: "1", OWNER_LABEL: owner, WORK_LABEL: work, USER_LABEL: user},
        "log_config": LogConfig(type="json-file", config={"max-size": str(log_bytes)}),
    }


class Placement(TypedDict, total=False):
    """Where and how a sandbox runs: its limits, owner and work labels, and `options`, more
    for the engine's create (its tmpfs folders and labels added to the sandbox's)."""

    limits: Required[Limits]
    owner: Required[str]
    work: Required[str]
    options: dict | None


def run(
    client: docker.DockerClient,
    image: str,
    command: list[str],
    *,
    stdin: list[Path] | None = None,
    watch: Watch | None = None,
    live: Live | None = None,
    **placement: Unpack[Placement],
) -> RunResult:
    """Runs image once in the sandbox, feeding it the files `stdin` one after another; the
    container is always removed. A cancel through `watch` kills it.

    The caller holds the claim on `work`, so any container still labelled with it was left
    by a dead earlier attempt and is removed first.
    """
    _remove_labelled(client, f"{WORK_LABEL}={placement['work']}")
    started = time.monotonic()
    container = start(client, image, command, stdin=stdin is not None, **placement)
    limits = placement["limits"]
    return finish(container, limits=limits, stdin=stdin, watch=watch, started=started, live=live)


def start(
    client: docker.DockerClient,
    image: str,
    command: list[str],
    *,
    stdin: bool,
    limits: Limits,
    owner: str,
    work: str,
    options: dict | None = None,
) -> Container:
    """A sandbox started (Placement), its stdin open if asked for (then it waits for finish
    to feed it)."""
    sandboxed = container_options(limits, owner, work)
    more = options or {}
    merged = {key: {**sandboxed[key], **more[key]} for key in ("tmpfs", "labels") if key in more}
    container = client.containers.create(
        image, command, stdin_open=stdin, **{**sandboxed, **more, **merged}
    )
    try:
        container.start()
    except BaseException:
        remove(container)
        raise
    return container


def finish(
    container: Container,
    *,
    limits: Limits,
    stdin: list[Path] | None = None,
    watch: Watch | None = None,
    started: float | None = None,
    live: Live | None = None,
) -> RunResult:
    """Feeds a started sandbox the files `stdin`, waits for it within the time limit and
    collects what it did (its seconds counted from `started`, or now), what it prints and
    yields shown `live` meanwhile; it is always removed."""
    started = started or time.monotonic()
    try:
        following = live_follow(container, live) if live is not None else None
        with (watch or Watch()).running(container.kill):
            if stdin is not None:
                _feed_stdin(container.client, container.id, stdin)
            timed_out = _wait(container, limits.timeout_s)
        if following is not None:
            following.join(FOLLOW_END_S)
        seconds = time.monotonic() - started
        container.reload()
        state = container.attrs["State"]
        return RunResult(
            exit_code=None if timed_out else state["ExitCode"],
            timed_out=timed_out,
            oom_killed=bool(state.get("OOMKilled")),
            stdout=container.logs(stdout=True, stderr=False),
            stderr_tail=stderr_tail(container, limits),
            seconds=seconds,
        )
    finally:
        remove(container)


def _feed_stdin(client: docker.DockerClient, container_id: str, paths: list[Path]) -> None:
    """Streams the files into the container's stdin, a chunk at a time, then closes it."""
    sock = client.api.attach_socket(container_id, params={"stdin": 1, "stream": 1})
    raw = sock._sock  # docker-py exposes the writable socket only this way
    try:
        for path in paths:
            send_file(raw, path)
        raw.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the model exited before reading all of it; its exit status tells the story
    finally:
        sock.close()


def send_file(sock: socket.socket, path: Path) -> None:
    """Streams a file into a socket a chunk at a time: never all of it in memory."""
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            sock.sendall(chunk)


def stderr_tail(container, limits: Limits) -> str:
    """The end of what the container wrote to stderr, at most the log limit."""
    stderr = container.logs(stdout=False, stderr=True, tail=2000)
    return stderr[-limits.log_kb * 1024 :].decode("utf-8", "replace")


def _wait(container, timeout_s: int) -> bool:
    """True when the container had to be killed for running past timeout_s. An engine that
    cannot be reached is the farm's fault and raises: it is never reported as a timeout."""
    try:
        container.wait(timeout=timeout_s)
        return False
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as error:
        if not read_timed_out(error):
            raise
        container.kill()
        container.wait(timeout=30)
        return True


def remove(container) -> None:
    try:
        container.remove(force=True)
    except NotFound:
        pass
    except APIError as error:
        if error.status_code != 409:  # 409: removal already in progress
            raise


def owner_for(queue: str) -> str:
    """The label value marking the sandboxes of this host's worker for queue."""
    return f"{queue}@{socket.gethostname()}"


def remove_leftovers(client: docker.DockerClient, owner: str) -> int:
    """Removes sandbox containers a dead worker of this owner left behind."""
    return _remove_labelled(client, f"{OWNER_LABEL}={owner}")


def _remove_labelled(client: docker.DockerClient, label: str) -> int:
    filters = {"label": [f"{SANDBOX_LABEL}=1", label]}
    # sparse: no inspect per container, which fails for one removed since the listing
    leftovers = client.containers.list(all=True, filters=filters, sparse=True)
    for container in leftovers:
        remove(container)
    return len(leftovers)
