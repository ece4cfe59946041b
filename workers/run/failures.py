"""What went wrong in a sandboxed run: a sentence a model's author can act on, and one word for
Prometheus (core/metrics.py), read from the run's result and the runner's error record
(runner/protocol.py)."""

import json

from core import metrics
from runner.protocol import ERROR_PREFIX, EXIT_BAD_RESULT, EXIT_KILLED, EXIT_OK, EXIT_OUTPUT_FAILED
from workers.run.sandbox import Limits, RunResult


def failure_message(result: RunResult, limits: Limits) -> str | None:
    """What went wrong in a sandboxed run, as a sentence a model's author can act on; None if
    the run succeeded."""
    reason = failure_reason(result)
    if reason is None:
        return None
    record = _error_record(result.stderr_tail)
    if reason == "timeout":
        return f"The model timed out after {limits.timeout_s} s."
    if reason == "protocol":
        return (
            "The model wrote into the runner's own output channel and broke its protocol "
            f"({result.protocol_error}); write outputs to output_dir and print to the log."
        )
    if reason == "out_of_memory":
        return f"The model ran out of memory (limit {limits.memory_mb} MB)."
    if reason == "output":
        return (
            f"The model's outputs could not be written (limit {limits.output_mb} MB): "
            f"{record or 'see the log'}"
        )
    if reason == "result":
        return f"The model's predict returned an unusable result: {record}"
    if record:
        return f"The model's {record}"
    tail = "\n".join(result.stderr_tail.strip().splitlines()[-15:])
    return f"The model exited with code {result.exit_code}: {tail or 'no output'}"


def job_failure(result: RunResult, limits: Limits) -> str | None:
    """failure_message of a job's (or batch item's) run, each failure counted by its reason
    for Prometheus (core/metrics.py)."""
    failure = failure_message(result, limits)
    if failure is not None:
        metrics.SANDBOX_FAILURES.labels(failure_reason(result)).inc()
    return failure


def failure_reason(result: RunResult) -> str | None:
    """Why a sandboxed run failed, in one word; None if it succeeded."""
    if result.timed_out:
        return "timeout"
    if result.protocol_error:
        return "protocol"
    if result.oom_killed or result.exit_code == EXIT_KILLED:
        return "out_of_memory"
    if result.exit_code == EXIT_OK:
        return None
    return {EXIT_OUTPUT_FAILED: "output", EXIT_BAD_RESULT: "result"}.get(result.exit_code, "crash")


def _error_record(stderr: str) -> str | None:
    record = error_record(stderr)
    if record is None:
        return None
    trace = record["traceback"].strip().splitlines()[-6:]
    return f"{record['stage']} failed: {record['type']}: {record['message']}\n" + "\n".join(trace)


def error_record(stderr: str) -> dict | None:
    """The runner's error record (runner/protocol.py) in a run's stderr, if it wrote one."""
    for line in reversed(stderr.splitlines()):
        if line.startswith(ERROR_PREFIX):
            try:
                record = json.loads(line[len(ERROR_PREFIX) :])
                fields = [str(record[name]) for name in ("stage", "type", "message", "traceback")]
            except (ValueError, KeyError, TypeError):
                return None
            return dict(zip(("stage", "type", "message", "traceback"), fields, strict=True))
    return None
