"""The runner: the entrypoint of every model image. Standard library only.

    python -m runner --self-test      import predict.py, call setup() and write the
                                      description of predict's inputs to stdout (JSON)
    python -m runner --input-name N   read the input file from stdin, run the model once, and
                                      write the outputs to stdout as a base64 tar between markers
    python -m runner --request JSON   the same with typed inputs: JSON holds the values and
                                      the sizes of the files that stdin carries one after another
    python -m runner --serve          load the model, then answer framed requests (runner/serve.py);
                                      with --standby, load it when the first request comes

The model's own prints go to stderr, so stdout carries only the outputs. runner/protocol.py
holds the markers, the error line, the exit codes and the request's fields.
"""

import argparse
import base64
import importlib.util
import io
import json
import os
import stat
import sys
import tarfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from runner import inputs, protocol
from runner.protocol import (
    ERROR_PREFIX,
    EXIT_BAD_RESULT,
    EXIT_BAD_SIGNATURE,
    EXIT_LOAD_FAILED,
    EXIT_OK,
    EXIT_OUTPUT_FAILED,
    EXIT_PREDICT_FAILED,
    OUTPUT_BEGIN,
    OUTPUT_END,
)

# Overridable so the runner can be exercised outside an image (unit tests).
MODEL_DIR = Path(os.environ.get("MODELFARM_MODEL_DIR", protocol.MODEL_DIR))
OUTPUT_DIR = Path(os.environ.get("MODELFARM_OUTPUT_DIR", protocol.OUTPUT_DIR))
INPUT_DIR = Path(os.environ.get("MODELFARM_INPUT_DIR", protocol.INPUT_DIR))


class Failure(Exception):
    def __init__(self, stage: str, exit_code: int, error: BaseException) -> None:
        super().__init__(stage)
        self.stage = stage
        self.exit_code = exit_code
        self.error = error


@dataclass
class Model:
    predict: object
    description: dict  # runner/inputs.py's description of predict's inputs


def load_model() -> Model:
    """The model, after setup() ran once, with its inputs described."""
    predict = _load_predict()
    try:
        return Model(predict, inputs.describe(predict))
    except inputs.SignatureError as error:
        raise Failure("signature", EXIT_BAD_SIGNATURE, error) from error


def _load_predict():
    try:
        sys.path.insert(0, str(MODEL_DIR))
        spec = importlib.util.spec_from_file_location("predict", MODEL_DIR / "predict.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        predictor_class = getattr(module, "Predictor", None)
        if predictor_class is not None:
            predictor = predictor_class()
            if hasattr(predictor, "setup"):
                predictor.setup()
            return predictor.predict
        if callable(getattr(module, "predict", None)):
            return module.predict
        raise AttributeError("predict.py defines neither a class Predictor nor a function predict")
    except BaseException as error:  # the model's code may raise anything, SystemExit included
        raise Failure("setup", EXIT_LOAD_FAILED, error) from error


def run_once(
    model: Model, request: tuple[dict, dict], output_dir: Path, emit=lambda chunk: None
) -> None:
    """Runs predict on a received request, (files, values), and writes its result; a
    streaming predict's chunks go to emit(JSON bytes) one by one as it yields them."""
    try:
        result = inputs.call(model.predict, model.description, *request, output_dir)
        if model.description.get("stream"):
            result = _streamed(result, output_dir, emit)
    except Failure:
        raise
    except BaseException as error:
        raise Failure("predict", EXIT_PREDICT_FAILED, error) from error
    if result is None:
        return
    try:
        text = json.dumps(result)
        if not isinstance(result, dict):
            raise TypeError(f"predict returned {type(result).__name__}; return a dict or None")
    except (TypeError, ValueError) as error:
        raise Failure("result", EXIT_BAD_RESULT, error) from error
    try:
        (output_dir / "result.json").write_text(text)
    except OSError as error:
        raise Failure("output", EXIT_OUTPUT_FAILED, error) from error


def _streamed(chunks, output_dir: Path, emit) -> dict:
    """Sends each chunk as it is yielded; the result holds them all (runner/protocol.py)."""
    sent = []
    for chunk in chunks:
        if isinstance(chunk, os.PathLike):
            chunk = {protocol.STREAMED_FILE: _output_name(Path(chunk), output_dir)}
        try:
            data = json.dumps(chunk).encode()
        except (TypeError, ValueError) as error:
            problem = TypeError(
                f"predict yielded a {type(chunk).__name__}, which is not JSON: yield str, "
                "numbers, lists, dicts, or the Path of a file in output_dir"
            )
            raise Failure("result", EXIT_BAD_RESULT, problem) from error
        emit(data)
        sent.append(chunk)
    result = {protocol.STREAMED_CHUNKS: sent}
    if sent and all(isinstance(chunk, str) for chunk in sent):
        result[protocol.STREAMED_TEXT] = "".join(sent)
    return result


def _output_name(path: Path, output_dir: Path) -> str:
    try:
        return (output_dir / path).resolve().relative_to(output_dir.resolve()).as_posix()
    except ValueError:
        problem = ValueError(
            f"predict yielded the path {str(path)[:200]!r}, which is not in output_dir: "
            "write the file there and yield its path"
        )
        raise Failure("result", EXIT_BAD_RESULT, problem) from None


def receive(stream, fields: dict, size: int | None = None) -> tuple[dict, dict]:
    """A request's files, written from `stream` into the input folder (read-only for the
    model), and its values: (files by input name, values). A request of one unnamed file
    ("input_name") is the model's only file input, whose `size` None means: up to the end."""
    INPUT_DIR.mkdir(parents=True, exist_ok=True)
    INPUT_DIR.chmod(0o755)
    files = fields.get(protocol.REQUEST_FILES)
    if files is None:
        files = [{"input": None, "name": fields.get(protocol.REQUEST_INPUT_NAME), "size": size}]
    received = {}
    for file in files:
        folder = INPUT_DIR if file["input"] is None else INPUT_DIR / Path(file["input"]).name
        folder.mkdir(exist_ok=True)
        path = folder / Path(str(file["name"] or inputs.LEGACY_INPUT)).name
        _write(stream, path, file["size"])
        folder.chmod(0o555)
        received[file["input"]] = path
    INPUT_DIR.chmod(0o555)
    return received, fields.get(protocol.REQUEST_VALUES, {})


def _write(stream, path: Path, size: int | None) -> None:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444), "wb") as target:
        while size is None or size:
            chunk = stream.read(1 << 20 if size is None else min(1 << 20, size))
            if not chunk and size is None:
                return
            if not chunk:
                raise protocol.FramingError("an input ended before its size")
            target.write(chunk)
            size = None if size is None else size - len(chunk)


def archive_outputs() -> bytes:
    """/output as an (uncompressed) tar. In GNU format, since the default (PAX) adds a header
    per file for its fractional mtime; and ending at the end-of-archive blocks, without the
    padding to a 10 KiB record: most of a small output's tar would be zeros."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for folder, subfolders, files in os.walk(OUTPUT_DIR):
            for name in sorted(subfolders + files):
                _add_entry(archive, Path(folder, name))
    return buffer.getbuffer()[: archive.offset].tobytes()


def _add_entry(archive: tarfile.TarFile, path: Path) -> None:
    """A file or folder's entry, made from its lstat alone (tarfile's add looks up the names
    of its owner and group, a read of /etc/passwd and /etc/group per entry); anything else is
    added as tarfile makes it, for the worker to refuse."""
    status = path.lstat()
    entry = tarfile.TarInfo(path.relative_to(OUTPUT_DIR).as_posix())
    entry.mode, entry.mtime = stat.S_IMODE(status.st_mode), int(status.st_mtime)
    if stat.S_ISDIR(status.st_mode):
        entry.type = tarfile.DIRTYPE
        archive.addfile(entry)
    elif stat.S_ISREG(status.st_mode):
        entry.size = status.st_size
        with path.open("rb") as data:
            archive.addfile(entry, data)
    else:
        archive.add(path, arcname=entry.name, recursive=False)


def _chunk_writer(stream):
    """A one-shot runner's emit: each chunk a line on stdout, at once."""

    def emit(chunk: bytes) -> None:
        stream.write(protocol.CHUNK_PREFIX.encode() + chunk + b"\n")
        stream.flush()

    return emit


def send_outputs(stream) -> None:
    stream.write(f"{OUTPUT_BEGIN}\n".encode())
    stream.write(base64.encodebytes(archive_outputs()))
    stream.write(f"{OUTPUT_END}\n".encode())
    stream.flush()


def record_of(failure: Failure) -> dict:
    """The structured error record the worker turns into a sentence."""
    return {
        "stage": failure.stage,
        "type": type(failure.error).__name__,
        "message": str(failure.error)[:2000],
        "traceback": "".join(traceback.format_exception(failure.error))[-4000:],
    }


def report(failure: Failure) -> int:
    sys.stderr.write(ERROR_PREFIX + json.dumps(record_of(failure)) + "\n")
    sys.stderr.flush()
    return failure.exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="runner")
    parser.add_argument(protocol.SELF_TEST_FLAG, action="store_true")
    parser.add_argument(protocol.INPUT_NAME_FLAG, default=inputs.LEGACY_INPUT)
    parser.add_argument(protocol.REQUEST_FLAG, type=json.loads)
    parser.add_argument(protocol.SERVE_FLAG, action="store_true")
    parser.add_argument(protocol.STANDBY_FLAG, action="store_true")
    parser.add_argument("--log-limit", type=int, default=256 * 1024)
    args = parser.parse_args(argv)
    # Keep stdout for the outputs: the model's prints go to stderr.
    outputs_stream = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    if args.standby and not sys.stdin.buffer.peek(1):
        return EXIT_OK  # stdin closed before any request: the worker let it go unused
    try:
        model = load_model()
        if args.self_test:
            print("self-test passed: predict.py imported and setup() ran", file=sys.stderr)
            outputs_stream.write(json.dumps(model.description).encode())
            outputs_stream.flush()
            return EXIT_OK
        if args.serve:
            from runner.serve import serve

            serve(model, sys.stdin.buffer, outputs_stream, args.log_limit)
            return EXIT_OK
        fields = args.request or {protocol.REQUEST_INPUT_NAME: args.input_name}
        run_once(
            model, receive(sys.stdin.buffer, fields), OUTPUT_DIR, _chunk_writer(outputs_stream)
        )
        try:
            send_outputs(outputs_stream)
        except OSError as error:
            raise Failure("output", EXIT_OUTPUT_FAILED, error) from error
    except Failure as failure:
        return report(failure)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
