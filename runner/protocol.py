"""The contract between the worker and the runner inside every model image. Standard library only.

Both sides import this module: the runner to speak the protocol, the worker to read it.

    stdin   the job's input, raw bytes, closed at the end
    stdout  only the outputs: OUTPUT_BEGIN, the base64 of a tar of /output, OUTPUT_END
    stderr  the model's own prints, then on failure one line ERROR_PREFIX + a JSON record
            {"stage", "type", "message", "traceback"}
    exit    0, or one of the EXIT_* codes below (137, killed, comes from the engine)
"""

import json

OUTPUT_BEGIN = "MODELFARM-OUTPUT-BEGIN"
OUTPUT_END = "MODELFARM-OUTPUT-END"
ERROR_PREFIX = "MODELFARM-ERROR "

EXIT_OK = 0
EXIT_LOAD_FAILED = 3
EXIT_PREDICT_FAILED = 4
EXIT_BAD_RESULT = 5
EXIT_OUTPUT_FAILED = 6
EXIT_BAD_SIGNATURE = 7  # predict's inputs cannot be described (runner/inputs.py)
EXIT_KILLED = 137

# The fixed, unprivileged user every model runs as (the image's USER and the sandbox's user).
MODEL_UID = 10001

# Where the runner finds the model and leaves outputs inside the image.
MODEL_DIR = "/model"
OUTPUT_DIR = "/output"
INPUT_DIR = "/tmp/modelfarm-input"

SELF_TEST_FLAG = "--self-test"
INPUT_NAME_FLAG = "--input-name"
REQUEST_FLAG = "--request"

# A request's fields (the JSON after REQUEST_FLAG, or a serve request's header). Either one
# file for the model's only file input, its name the file name the model sees:
#   {"input_name": "digit.png"}                          + the file's bytes
# or typed inputs: values, and files sent one after another, each for a named input:
#   {"values": {"threshold": 0.3}, "files": [{"input": "image", "name": "a.png", "size": N}]}
#                                                        + the files' bytes, in that order
REQUEST_INPUT_NAME = "input_name"
REQUEST_VALUES = "values"
REQUEST_FILES = "files"

# Serve mode (warm containers): `python -m runner --serve` imports the model and runs setup()
# once, then answers requests one after another until its stdin closes. Every message, both
# ways, is a frame: one line of JSON (the header, at most FRAME_HEADER_MAX bytes, always with
# "size") followed by exactly `size` raw bytes.
#   worker -> runner   {"input_name": "input", "size": N, "more": false}
#                                                                   + the input's bytes
#                      (or a typed request's fields, as above, with "size": the files' total)
#                      ("more": true says that further requests follow at once, so their
#                      answers may be held for a few milliseconds and sent together)
#   runner -> worker   {"kind": "log", "live": true, "size": N}     + what the model printed
#                      since the last such frame: sent while it runs, every LIVE_EVERY_S and
#                      at its end, LIVE_LOG_MAX bytes per request at most
#                      {"kind": "output", "size": N}                + the JSON of one chunk a
#                      streaming predict yielded, as soon as it did
#                      {"kind": "log", "size": N}                   + the model's stderr
#                      {"kind": "result", "exit": code, "error": record or null, "size": N}
#                                                                   + a tar of /output (exit 0)
# The runner's frames go to the stdout it was started with; the model's own fd 1 and fd 2 go to
# the request's log, so nothing the model prints can break the framing.
SERVE_FLAG = "--serve"
# With --serve, a standby runner (pre-pull starts one per READY version on each inference host)
# waits for its first request before it imports predict.py and runs setup(): until a job takes
# it, it holds an interpreter's memory, not the model's, and has run none of the model's code,
# so the first job of any user may take it (it is theirs alone from then on).
STANDBY_FLAG = "--standby"
LIVE_EVERY_S = 0.1
LIVE_LOG_MAX = 4 * 1024 * 1024

# A streaming predict (a generator: it yields its output in chunks) has "stream": true in its
# description. Its result is {STREAMED_CHUNKS: [every chunk]}, and with str chunks also
# {STREAMED_TEXT: their concatenation}. A chunk is JSON, or a file it wrote in the output
# folder, sent as {STREAMED_FILE: its path there}. A one-shot runner writes each chunk to
# stdout as a line, CHUNK_PREFIX + its JSON, before OUTPUT_BEGIN.
STREAMED_CHUNKS = "chunks"
STREAMED_TEXT = "text"
STREAMED_FILE = "file"
CHUNK_PREFIX = "MODELFARM-CHUNK "
FRAME_HEADER_MAX = 128 * 1024  # room for a typed request's values (64 KiB, core/inputs.py)


class FramingError(Exception):
    """A frame that does not follow the protocol: the peer is broken or hostile."""


def encode_header(**fields: object) -> bytes:
    return json.dumps(fields).encode() + b"\n"


def decode_header(line: bytes) -> dict | None:
    """The header of a frame from its line; None at end of stream (an empty line)."""
    if not line:
        return None
    if not line.endswith(b"\n") or len(line) > FRAME_HEADER_MAX:
        raise FramingError("a frame header is cut or too long")
    try:
        header = json.loads(line)
        size = header["size"]
    except (ValueError, KeyError, TypeError) as error:
        raise FramingError(f"a frame header is not JSON with a size: {error}") from None
    if not isinstance(size, int) or size < 0:
        raise FramingError("a frame size is not a count of bytes")
    return header
