"""The runner and the worker speak runner/protocol.py: the runner's real process, outside an
image, read back by the worker's own parsing."""

import json
import subprocess
import sys
import time

import pytest

from runner import serve
from runner.protocol import (
    EXIT_BAD_RESULT,
    EXIT_LOAD_FAILED,
    EXIT_OK,
    EXIT_PREDICT_FAILED,
    SELF_TEST_FLAG,
    SERVE_FLAG,
    FramingError,
    decode_header,
    encode_header,
)
from tests.utils import ROOT
from workers.run import failures, sandbox
from workers.run.outputs import inline_result, read_archive, unpack_outputs

LIMITS = sandbox.Limits(
    cpus=1, memory_mb=128, pids=64, timeout_s=8, output_mb=1, tmp_mb=64, log_kb=64
)
ECHO = (
    "def predict(input_path, output_dir):\n"
    "    print('to stderr, never into the outputs')\n"
    "    (output_dir / 'copy.bin').write_bytes(input_path.read_bytes())\n"
    "    return {'size': input_path.stat().st_size}\n"
)


def _model_env(tmp_path, predict: str) -> dict[str, str]:
    """A model folder, an output folder and the environment that points the runner at them."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "predict.py").write_text(predict)
    (tmp_path / "output").mkdir()
    return {
        "MODELFARM_MODEL_DIR": str(tmp_path / "model"),
        "MODELFARM_OUTPUT_DIR": str(tmp_path / "output"),
        "MODELFARM_INPUT_DIR": str(tmp_path / "input"),
        "PYTHONPATH": str(ROOT),
    }


def _run_runner(tmp_path, predict: str, *args: str, stdin: bytes = b"") -> sandbox.RunResult:
    env = _model_env(tmp_path, predict)
    done = subprocess.run(
        [sys.executable, "-m", "runner", *args], input=stdin, env=env, capture_output=True,
        timeout=60,
    )  # fmt: skip
    return sandbox.RunResult(
        exit_code=done.returncode, timed_out=False, oom_killed=False, stdout=done.stdout,
        stderr_tail=done.stderr.decode(), seconds=0.1,
    )  # fmt: skip


def test_outputs_and_result_come_back_through_the_markers(tmp_path):
    result = _run_runner(tmp_path, ECHO, stdin=b"\x00\x01payload")
    assert result.exit_code == EXIT_OK, result.stderr_tail
    assert failures.failure_message(result, LIMITS) is None
    files = unpack_outputs(result.stdout, LIMITS.output_mb * 1024**2)
    assert files["copy.bin"] == b"\x00\x01payload"
    assert inline_result(files) == {"size": 9}
    assert "to stderr" in result.stderr_tail


@pytest.mark.parametrize(
    "predict, exit_code, words",
    [
        ("def predict(i, o):\n    raise ValueError('bad pixel')\n", EXIT_PREDICT_FAILED,
         "The model's predict failed: ValueError: bad pixel"),
        ("import not_installed_anywhere\n", EXIT_LOAD_FAILED,
         "The model's setup failed: ModuleNotFoundError"),
        ("x = 1\n", EXIT_LOAD_FAILED, "neither a class Predictor nor a function predict"),
    ],
)  # fmt: skip
def test_a_failing_model_is_reported_by_stage_and_exit_code(tmp_path, predict, exit_code, words):
    result = _run_runner(tmp_path, predict, stdin=b"x")
    assert result.exit_code == exit_code
    assert words in failures.failure_message(result, LIMITS)


def test_self_test_loads_the_model_and_describes_its_inputs_only(tmp_path):
    result = _run_runner(tmp_path, ECHO, SELF_TEST_FLAG)
    assert result.exit_code == EXIT_OK
    # the old contract, predict(input_path, output_dir): one file input named "input"
    assert json.loads(result.stdout) == {
        "legacy": True,
        "inputs": [{"name": "input", "type": "file"}],
    }


COUNTING = (
    "import os\n"
    "SETUPS = []\n\n"
    "class Predictor:\n"
    "    def setup(self):\n"
    "        SETUPS.append(1)\n\n"
    "    def predict(self, input_path, output_dir):\n"
    "        data = input_path.read_bytes()\n"
    "        if data == b'fail':\n"
    "            raise ValueError('asked to fail')\n"
    "        os.write(1, b'raw bytes on fd 1\\n')\n"
    "        print('a print')\n"
    "        (output_dir / f'{data.decode()}.txt').write_bytes(data)\n"
    "        return {'setups': len(SETUPS), 'seen': sorted(os.listdir(output_dir))}\n"
)


def _read_frame(stream) -> tuple[dict, bytes]:
    header = decode_header(stream.readline())
    return header, stream.read(header["size"])


def _read_reply(stream) -> tuple[list[tuple[dict, bytes]], tuple[dict, bytes], tuple]:
    """One request's frames: those sent while it ran (live log, output), its log, its result."""
    sent_live = []
    while (frame := _read_frame(stream))[0]["kind"] != "log" or frame[0].get("live"):
        sent_live.append(frame)
    return sent_live, frame, _read_frame(stream)


def _serving(tmp_path, predict: str) -> subprocess.Popen:
    """A runner in serve mode on this model, its stdin and stdout ours."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner", SERVE_FLAG], env=_model_env(tmp_path, predict),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_serve_mode_loads_once_and_answers_framed_requests(tmp_path):
    runner = _serving(tmp_path, COUNTING)
    replies, sent_live = [], []
    for data in (b"one", b"fail", b"two"):
        runner.stdin.write(encode_header(input_name="input", size=len(data)) + data)
        runner.stdin.flush()
        live, log, result = _read_reply(runner.stdout)
        replies.append((log, result))
        sent_live.append(b"".join(payload for _, payload in live))
    runner.stdin.close()
    assert runner.wait(timeout=30) == EXIT_OK  # stdin closed: the runner exits by itself
    (log_header, log), (header_one, archive_one) = replies[0]
    assert log_header["kind"] == "log" and header_one["exit"] == EXIT_OK
    assert b"raw bytes on fd 1" in log and b"a print" in log  # the model's fd 1: its log
    assert sent_live[0] == log  # every byte of it sent live too, once
    files = read_archive(archive_one, LIMITS.output_mb * 1024**2)
    assert inline_result(files) == {"setups": 1, "seen": ["one.txt"]}
    (_, _), (header_fail, archive_fail) = replies[1]
    assert header_fail["exit"] == EXIT_PREDICT_FAILED
    assert header_fail["error"]["message"] == "asked to fail" and archive_fail == b""
    (_, _), (header_two, archive_two) = replies[2]
    files = read_archive(archive_two, LIMITS.output_mb * 1024**2)
    # setup() ran once for all requests; /output was emptied before each one.
    assert inline_result(files) == {"setups": 1, "seen": ["two.txt"]}


@pytest.mark.parametrize(
    "line", [b"not json\n", b'{"no": "size"}\n', b'{"size": -1}\n', b"x" * 20000 + b"\n"]
)
def test_broken_frame_headers_are_refused(line):
    with pytest.raises(FramingError):
        decode_header(line)
    assert decode_header(b"") is None


class _Recording:
    """A stream that records each write as it is flushed."""

    def __init__(self) -> None:
        self.pending, self.writes = b"", []

    def write(self, data) -> None:
        self.pending += bytes(data)

    def flush(self) -> None:
        self.writes.append(self.pending)
        self.pending = b""


def test_answers_of_a_window_leave_together(monkeypatch):
    monkeypatch.setattr(serve, "HOLD_S", 30)  # only the window's end may send them
    stream = _Recording()
    replies = serve._Replies(stream)
    replies.send(b"one;", more=True)
    replies.send(b"two;", more=True)
    assert stream.writes == []
    replies.send(b"three;", more=False)
    assert stream.writes == [b"one;two;three;"]
    replies.send(b"x" * serve.HOLD_BYTES, more=True)  # too much to hold
    assert stream.writes[-1] == b"x" * serve.HOLD_BYTES


def test_a_held_answer_leaves_even_if_the_next_request_never_ends():
    stream = _Recording()
    serve._Replies(stream).send(b"answered;", more=True)  # and the next request hangs
    deadline = time.monotonic() + 10
    while not stream.writes and time.monotonic() < deadline:
        time.sleep(0.005)
    assert stream.writes == [b"answered;"]


STREAMING = (
    "import time\n"
    "from pathlib import Path\n\n"
    "def predict(text: str, output_dir: Path = None):\n"
    "    for word in text.split():\n"
    "        print(f'saying {word}')\n"
    "        yield word + ' '\n"
    "        time.sleep(0.3)\n"
    "    (output_dir / 'all.txt').write_text(text)\n"
    "    yield output_dir / 'all.txt'\n"
)


def test_a_streaming_predict_sends_each_chunk_and_print_as_it_comes(tmp_path):
    runner = _serving(tmp_path, STREAMING)
    runner.stdin.write(encode_header(values={"text": "one two three"}, files=[], size=0))
    runner.stdin.flush()
    came, frames = [], []
    while (frame := _read_frame(runner.stdout))[0]["kind"] != "result":
        came.append(time.monotonic())
        frames.append(frame)
    runner.stdin.close()
    assert runner.wait(timeout=30) == EXIT_OK
    outputs = [json.loads(payload) for header, payload in frames if header["kind"] == "output"]
    assert outputs == ["one ", "two ", "three ", {"file": "all.txt"}]
    printed = b"".join(p for h, p in frames if h["kind"] == "log" and h.get("live"))
    assert printed == b"saying one\nsaying two\nsaying three\n"
    assert came[-1] - came[0] > 0.5  # sent as they came, not all at the end
    files = read_archive(frame[1], LIMITS.output_mb * 1024**2)
    assert inline_result(files) == {"chunks": outputs}  # not all str: no text
    assert files["all.txt"] == b"one two three"


@pytest.mark.parametrize(
    "body, words",
    [
        ("    yield object()\n", "yielded a object, which is not JSON"),
        ("    yield Path('/etc/passwd')\n", "which is not in output_dir"),
    ],
)
def test_a_chunk_that_cannot_be_sent_fails_the_job_with_a_sentence(tmp_path, body, words):
    predict = "from pathlib import Path\n\ndef predict(text: str):\n" + body
    result = _run_runner(tmp_path, predict, "--request", '{"values": {"text": "x"}, "files": []}')
    assert result.exit_code == EXIT_BAD_RESULT
    assert words in failures.failure_message(result, LIMITS)


def test_a_one_shot_runner_writes_each_chunk_as_a_line_before_the_outputs(tmp_path):
    result = _run_runner(
        tmp_path, STREAMING, "--request", '{"values": {"text": "a b"}, "files": []}'
    )
    assert result.exit_code == EXIT_OK, result.stderr_tail
    lines = [line for line in result.stdout.split(b"\n") if line.startswith(b"MODELFARM-CHUNK ")]
    assert [json.loads(line.split(b" ", 1)[1]) for line in lines] == [
        "a ",
        "b ",
        {"file": "all.txt"},
    ]
    files = unpack_outputs(result.stdout, LIMITS.output_mb * 1024**2)
    assert inline_result(files) == {"chunks": ["a ", "b ", {"file": "all.txt"}]}
