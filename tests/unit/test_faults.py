"""Whose fault: users get sentences that say what to fix; the farm's faults are retried, named,
and never blamed on the package."""

import httpx
import pytest
import redis
import requests
import urllib3
from docker.errors import APIError
from sqlalchemy.exc import OperationalError

from core.errors import FarmFault, UserFacingError, component_of, gave_up_message
from workers import retry
from workers.run import failures, sandbox

LIMITS = sandbox.Limits(
    cpus=1, memory_mb=128, pids=64, timeout_s=8, output_mb=64, tmp_mb=64, log_kb=64
)


@pytest.mark.parametrize(
    "error, component",
    [
        (OperationalError("SELECT 1", {}, Exception("connection refused")), "the database"),
        (redis.exceptions.ConnectionError("Error 111"), "Redis"),
        (urllib3.exceptions.MaxRetryError(None, "/modelfarm/x"), "object storage"),
        (httpx.ConnectError("refused"), "the registry"),
        (APIError("500 Server Error"), "the Docker engine"),
        (requests.exceptions.ConnectionError("socket"), "the Docker engine"),
        (FarmFault("the registry", "push did not land"), "the registry"),
        (ValueError("a bug"), None),
    ],
)
def test_each_dependencys_errors_are_named(error, component):
    assert component_of(error) == component


def test_the_cause_of_a_wrapped_error_names_the_dependency():
    try:
        try:
            raise urllib3.exceptions.MaxRetryError(None, "/x")
        except urllib3.exceptions.MaxRetryError as inner:
            raise RuntimeError("writing run.log") from inner
    except RuntimeError as outer:
        assert component_of(outer) == "object storage"


def test_giving_up_is_the_farms_sentence_never_the_packages():
    message = gave_up_message("build", FarmFault("the registry", "refused"))
    assert message.startswith("The farm could not finish this build")
    assert message.endswith("(the registry could not be reached); try again later.")
    assert "internal error" in gave_up_message("job", KeyError("x"))


def _fast_retries(monkeypatch, attempts: int = 4) -> None:
    monkeypatch.setattr(retry.settings, "farm_retry_attempts", attempts)
    monkeypatch.setattr(retry.settings, "farm_retry_window_s", 0)


def test_a_farm_fault_is_retried_until_it_clears(monkeypatch):
    _fast_retries(monkeypatch)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise redis.exceptions.ConnectionError("down")
        return "done"

    assert retry.with_retries(flaky) == "done"
    assert len(calls) == 3


def test_retries_are_bounded_and_the_last_error_is_raised(monkeypatch):
    _fast_retries(monkeypatch, attempts=3)
    calls = []

    def down() -> None:
        calls.append(1)
        raise FarmFault("object storage", "refused")

    with pytest.raises(FarmFault):
        retry.with_retries(down)
    assert len(calls) == 3


def test_a_users_fault_is_never_retried(monkeypatch):
    _fast_retries(monkeypatch)
    calls = []

    def bad_package() -> None:
        calls.append(1)
        raise UserFacingError("predict.py is not valid Python at line 1")

    with pytest.raises(UserFacingError):
        retry.with_retries(bad_package)
    assert len(calls) == 1


def test_the_waits_double_to_fill_the_window():
    first = retry.first_wait_s(5, 120)
    assert first == 8
    assert sum(first * 2**i for i in range(4)) == 120


def _result(**fields) -> sandbox.RunResult:
    base = {"exit_code": 0, "timed_out": False, "oom_killed": False, "stdout": b""}
    return sandbox.RunResult(**{**base, "stderr_tail": "", "seconds": 1.0, **fields})


@pytest.mark.parametrize(
    "fields, sentence",
    [
        ({"timed_out": True, "exit_code": None}, "The model timed out after 8 s."),
        ({"oom_killed": True, "exit_code": 137}, "The model ran out of memory (limit 128 MB)."),
        ({"exit_code": 137}, "The model ran out of memory (limit 128 MB)."),
        ({"exit_code": 2, "stderr_tail": "Killed\n"}, "The model exited with code 2: Killed"),
    ],
)
def test_sandbox_failures_are_whole_sentences(fields, sentence):
    assert failures.failure_message(_result(**fields), LIMITS) == sentence


def test_the_models_own_exception_is_reported_with_its_stage():
    record = (
        'MODELFARM-ERROR {"stage": "predict", "type": "ValueError", "message": "bad pixel", '
        '"traceback": "Traceback\\n  File predict.py\\nValueError: bad pixel"}'
    )
    message = failures.failure_message(_result(exit_code=4, stderr_tail=record), LIMITS)
    assert message.startswith("The model's predict failed: ValueError: bad pixel")
    assert failures.failure_message(_result(), LIMITS) is None


class _Container:
    def __init__(self, error: Exception) -> None:
        self.error, self.killed = error, False

    def wait(self, timeout):
        if not self.killed:
            raise self.error

    def kill(self):
        self.killed = True


def test_a_read_timeout_is_the_models_timeout():
    timeout = requests.exceptions.ConnectionError("UnixHTTPConnectionPool: Read timed out.")
    container = _Container(timeout)
    assert sandbox._wait(container, 1) is True
    assert container.killed


def test_an_unreachable_docker_engine_is_never_reported_as_a_timeout():
    refused = requests.exceptions.ConnectionError("Connection aborted: FileNotFoundError")
    with pytest.raises(requests.exceptions.ConnectionError):
        sandbox._wait(_Container(refused), 1)


def test_object_storage_is_degraded_below_one_upload_of_free_space():
    from api.routes.health import StorageDegraded, check_free_space

    disk = {"dir": "/data", "free": 100 * 1024**2}
    check_free_space([disk], needed=64 * 1024**2)
    with pytest.raises(StorageDegraded, match="100 MB free, below the largest allowed upload"):
        check_free_space([disk], needed=512 * 1024**2)
