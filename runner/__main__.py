"""The runner: the entrypoint of every model image. Standard library only.

    python -m runner --self-test      import predict.py and call setup(), nothing else
    python -m runner --input-name N   read the input from stdin, run the model once, and write
                                      the outputs to stdout as a base64 tar between markers

The model's own prints go to stderr, so stdout carries only the outputs. runner/protocol.py
holds the markers, the error line and the exit codes.
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
from pathlib import Path

from runner import protocol
from runner.protocol import (
    ERROR_PREFIX,
    EXIT_BAD_RESULT,
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


def load_model():
    """The model's predict callable, after setup() ran once."""
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


def run_once(predict, input_path: Path, output_dir: Path) -> None:
    try:
        result = predict(input_path, output_dir)
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


def receive_input(name: str) -> Path:
    INPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = INPUT_DIR / name
    with path.open("wb") as target:
        while chunk := sys.stdin.buffer.read(1 << 20):
            target.write(chunk)
    path.chmod(0o444)
    INPUT_DIR.chmod(0o555)
    return path


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
    parser.add_argument(protocol.INPUT_NAME_FLAG, default="input")
    parser.add_argument(protocol.SERVE_FLAG, action="store_true")
    parser.add_argument("--log-limit", type=int, default=256 * 1024)
    args = parser.parse_args(argv)
    # Keep stdout for the outputs: the model's prints go to stderr.
    outputs_stream = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    try:
        predict = load_model()
        if args.self_test:
            print("self-test passed: predict.py imported and setup() ran", file=sys.stderr)
            return EXIT_OK
        if args.serve:
            from runner.serve import serve

            serve(predict, sys.stdin.buffer, outputs_stream, args.log_limit)
            return EXIT_OK
        input_path = receive_input(Path(args.input_name).name)
        run_once(predict, input_path, OUTPUT_DIR)
        try:
            send_outputs(outputs_stream)
        except OSError as error:
            raise Failure("output", EXIT_OUTPUT_FAILED, error) from error
    except Failure as failure:
        return report(failure)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
