"""The stack scripts' bookkeeping of the processes they start (scripts/lib.sh): a pid file names
one process, even after pids wrap around and another process takes the number."""

import subprocess
from pathlib import Path

from tests.utils import ROOT


def _lib(run: Path, commands: str) -> list[str]:
    """What `commands` print with scripts/lib.sh's functions, their files under `run`."""
    script = f'source scripts/lib.sh; RUN="{run}"; LOGS="{run}"; {commands}'
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_started_service_is_alive_until_stopped(tmp_path):
    said = _lib(
        tmp_path,
        "start_service sleeper sleep 60; pid_alive sleeper && echo alive; "
        "stop_service sleeper; pid_alive sleeper || echo stopped",
    )
    assert said == ["alive", "stopped"]
    assert not (tmp_path / "sleeper.pid").exists() and not (tmp_path / "sleeper.since").exists()


def test_a_pid_another_process_took_is_neither_the_service_nor_stopped(tmp_path):
    """Pids wrap (at 32768 here, within one test run): a stale pid file may name a process
    that is not the service."""
    other = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "service.pid").write_text(f"{other.pid}\n")
        (tmp_path / "service.since").write_text("1\n")  # the service started at another time
        said = _lib(tmp_path, "pid_alive service && echo alive || echo gone; stop_service service")
        assert said == ["gone"]
        assert other.poll() is None, "stop_service stopped a process that is not the service"
    finally:
        other.kill()
        other.wait()
