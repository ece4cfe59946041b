"""Warm sandboxes: containers whose runner serves request after request (runner/serve.py).

A warm container has every flag of a one-shot sandbox (workers/run/sandbox.py). It is kept for
one key only, (image, owner of the job, limits), so a model's memory never carries one user's
inputs into another user's job. A request that fails in any way the model cannot report itself
(timeout, out of memory, a crash, broken framing) discards the container; so does the worker's
death, since the runner exits when its stdin (held by the worker) closes.
"""

import json
import select
import socket
import struct
import time

import docker

from runner import protocol
from workers.run import sandbox
from workers.run.live import Live
from workers.run.request import RunnerRequest

STDOUT = 1
RECEIVE_BYTES = 1 << 16


class ContainerGone(Exception):
    """The container stopped (or broke the framing) during a request."""


class _Stdout:
    """The container's stdout from a docker attach socket (8-byte headers per chunk, since
    there is no TTY), read as a plain byte stream with a deadline. Received in large pieces
    and kept in bytearrays, so reading costs few system calls and no quadratic copying."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.raw, self.buffer = sock, bytearray(), bytearray()

    def _receive(self, deadline: float) -> None:
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = self.sock.recv(RECEIVE_BYTES)
        if not chunk:
            raise ContainerGone("the container closed its output")
        self.raw += chunk

    def _fill(self, deadline: float) -> None:
        """Moves the next chunk of the attach stream into the buffer, if it is stdout's."""
        while len(self.raw) < 8:
            self._receive(deadline)
        kind, size = struct.unpack_from(">BxxxL", self.raw)
        while len(self.raw) < 8 + size:
            self._receive(deadline)
        if kind == STDOUT:
            self.buffer += self.raw[8 : 8 + size]
        del self.raw[: 8 + size]

    def readline(self, limit: int, deadline: float) -> bytes:
        while (end := self.buffer.find(b"\n", 0, limit)) < 0:
            if len(self.buffer) >= limit:
                raise protocol.FramingError("a frame header is too long")
            self._fill(deadline)
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    def read(self, size: int, deadline: float) -> bytes:
        while len(self.buffer) < size:
            self._fill(deadline)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


class WarmContainer:
    """One serving runner in the sandbox, for one key."""

    def __init__(self, client: docker.DockerClient, image: str, key: tuple, *, limits,
                 owner: str) -> None:  # fmt: skip
        """Started for the key (image, user, limits); a standby when its user is None (the
        runner loads the model when the first request comes, runner/protocol.py)."""
        self.key, self.limits, self.last_used = key, limits, time.monotonic()
        user = key[1] or ""
        options = sandbox.container_options(limits, owner, work=f"warm-{id(self)}", user=user)
        command = [protocol.SERVE_FLAG, "--log-limit", str(limits.log_kb * 1024)]
        if key[1] is None:
            command.append(protocol.STANDBY_FLAG)
        # Created attached (docker-py's default), stdin is closed once the worker's attach
        # ends, so the runner exits when the worker goes away.
        self.container = client.containers.create(image, command, stdin_open=True, **options)
        self.socket = client.api.attach_socket(
            self.container.id, params={"stdin": 1, "stdout": 1, "stream": 1}
        )._sock  # docker-py exposes the raw, writable socket only this way
        self.container.start()
        self.stdout = _Stdout(self.socket)

    def predict_all(
        self, requests: list[RunnerRequest], live: Live | None = None
    ) -> list[sandbox.RunResult]:
        """Requests sent one after another without waiting (the runner answers them in order,
        so the engine's attach stream is crossed once for all of them), then one result each;
        fewer when the container did not survive a request: the last result is then that
        request's failure (the container is stopped), and the requests after it did not run.
        Any failed result means: discard me. What a request prints and yields goes to `live`
        as it comes."""
        sent = self._send_all(requests)
        results = []
        for _ in range(max(sent, 1)):
            result, alive = self._receive(live)
            results.append(result)
            if not alive:
                break
        return results

    def _receive(self, live: Live | None) -> tuple[sandbox.RunResult, bool]:
        """The next request's result, within its timeout; and whether the container lives."""
        started = time.monotonic()
        deadline = started + self.limits.timeout_s
        try:
            log = self._live_frames(deadline, live)
            header, archive = self._frame(deadline, "result")
        except TimeoutError:
            return self._ended(started, timed_out=True), False
        except protocol.FramingError as error:
            return self._ended(started, timed_out=False, broken=str(error)), False
        except (ContainerGone, OSError):
            return self._ended(started, timed_out=False), False
        self.last_used = time.monotonic()
        stderr = log.decode("utf-8", "replace")
        if header.get("error"):
            stderr += "\n" + protocol.ERROR_PREFIX + json.dumps(header["error"])
        return sandbox.RunResult(
            exit_code=header.get("exit"), timed_out=False, oom_killed=False, stdout=b"",
            stderr_tail=stderr, seconds=time.monotonic() - started, archive=archive,
        ), True  # fmt: skip

    def _send_all(self, requests: list[RunnerRequest]) -> int:
        """Sends the requests; how many went out whole before the container went away. What
        is in memory goes out together, in one write; a file is streamed after what came before
        it. Each request but the last is marked "more", so the runner may answer them together."""
        self.socket.settimeout(self.limits.timeout_s)
        pending: list[bytes] = []
        sent = 0
        try:
            for number, request in enumerate(requests):
                pending.append(request.header(more=number < len(requests) - 1))
                for part in request.parts:
                    if isinstance(part, bytes):
                        pending.append(part)
                        continue
                    self.socket.sendall(b"".join(pending))
                    pending, sent = [], number  # the requests before this one are out
                    sandbox.send_file(self.socket, part)
            self.socket.sendall(b"".join(pending))
            sent = len(requests)
        except OSError:
            pass  # the container is gone: reading says why
        return sent

    def _live_frames(self, deadline: float, live: Live | None) -> bytes:
        """The frames sent while the request ran (to `live`), up to its log's, which this is."""
        while True:
            header, payload = self._frame(deadline, "log", "output")
            if header["kind"] == "log" and not header.get("live"):
                return payload
            if live is not None:
                (live.log if header["kind"] == "log" else live.output)(payload)

    def _frame(self, deadline: float, *kinds: str) -> tuple[dict, bytes]:
        line = self.stdout.readline(protocol.FRAME_HEADER_MAX, deadline)
        header = protocol.decode_header(line)
        if header is None or header.get("kind") not in kinds:
            raise protocol.FramingError(f"expected a frame of {' or '.join(kinds)}")
        return header, self.stdout.read(header["size"], deadline)

    def _ended(
        self, started: float, *, timed_out: bool, broken: str | None = None
    ) -> sandbox.RunResult:
        """The result of a request the container did not survive (it is stopped here)."""
        if timed_out or broken:
            self.container.kill()
        state = _final_state(self.container)
        return sandbox.RunResult(
            exit_code=None if timed_out else state.get("ExitCode"), timed_out=timed_out,
            oom_killed=bool(state.get("OOMKilled")), stdout=b"",
            stderr_tail=sandbox.stderr_tail(self.container, self.limits),
            seconds=time.monotonic() - started,
            archive=None, protocol_error=broken, container_died=True,
        )  # fmt: skip

    def is_alive(self) -> bool:
        """Whether the runner is waiting for a request, told without a call to the engine: its
        output is open and silent. A stopped container's attach stream has ended, and output
        between requests means a broken runner; either makes the socket readable."""
        readable, _, _ = select.select([self.socket], [], [], 0)
        return not readable and not self.stdout.buffer and not self.stdout.raw

    def discard(self) -> None:
        try:
            self.socket.close()
        finally:
            sandbox.remove(self.container)


def _final_state(container) -> dict:
    try:
        container.wait(timeout=10)
    except Exception:  # still running: a broken framing from a live process
        container.kill()
        container.wait(timeout=10)
    container.reload()
    return container.attrs["State"]
