"""Hostile and broken model packages, one per validation rule, each with the words its error
must contain."""

import io
import stat
import struct
import warnings
import zipfile

from core.settings import settings
from tests.utils import make_zip

PREDICT = "def predict(input_path, output_dir):\n    return {'ok': True}\n"


def _with_mode(name: str, mode: int, data: bytes = b"x") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("predict.py", PREDICT)
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        archive.writestr(info, data)
    return buffer.getvalue()


def _renamed(placeholder: str, real: bytes) -> bytes:
    """A ZIP whose entry name holds bytes that zipfile itself would refuse to write."""
    package = make_zip({"predict.py": PREDICT, placeholder: "x"})
    assert len(placeholder.encode()) == len(real)
    return package.replace(placeholder.encode(), real)


def _declaring(*sizes: int) -> bytes:
    """A small ZIP whose directory claims its weight files hold `sizes` bytes, stored as is
    (so no compression ratio gives it away); ZIP64 records where a size needs them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("predict.py", PREDICT)
        for number, size in enumerate(sizes):
            archive.writestr(f"weights-{number}.bin", "tiny")
            # the central directory, written at close, tells these sizes
            archive.filelist[-1].file_size = archive.filelist[-1].compress_size = size
    return buffer.getvalue()


def _past_the_total() -> tuple[bytes, str]:
    """Files each at the limit for one file, together past the limit for all."""
    each = settings.package_max_file_bytes
    count = settings.package_max_unpacked_bytes // each + 1
    total = count * each + len(PREDICT.encode())
    return _declaring(*[each] * count), f"unpacks to {total} bytes"


def _duplicated() -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("predict.py", PREDICT)
            archive.writestr("predict.py", "import os\n")
    return buffer.getvalue()


def _encrypted() -> bytes:
    package = bytearray(make_zip({"predict.py": PREDICT}))
    central = package.rfind(b"PK\x01\x02")
    flags = struct.unpack_from("<H", package, central + 8)[0]
    struct.pack_into("<H", package, central + 8, flags | 0x1)
    return bytes(package)


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("predict.py", PREDICT)
        archive.writestr("weights.bin", b"\0" * (64 * 1024**2))
    return buffer.getvalue()


def _many_entries(count: int) -> bytes:
    return make_zip({"predict.py": PREDICT, **{f"data/{i}.txt": "" for i in range(count)}})


# name -> (package bytes, words the FAILED version's error must contain)
BROKEN_PACKAGES = {
    "not-a-zip": (b"this is not a zip file at all", "not a valid ZIP"),
    "truncated": (make_zip({"predict.py": PREDICT, "w.bin": "x" * 5000})[:-30], "not a valid ZIP"),
    "absolute-path": (make_zip({"predict.py": PREDICT, "/etc/cron.d/x": "x"}), "absolute path"),
    "dot-dot": (make_zip({"predict.py": PREDICT, "../../escape.txt": "x"}), "'..'"),
    "backslash": (make_zip({"predict.py": PREDICT, "..\\evil.txt": "x"}), "backslash"),
    "drive-letter": (make_zip({"predict.py": PREDICT, "C:/evil.txt": "x"}), "absolute path"),
    "nul-in-name": (_renamed("aXb.txt", b"a\0b.txt"), "control character"),
    "newline-in-name": (_renamed("aXb.txt", b"a\nb.txt"), "control character"),
    "symlink": (_with_mode("link", stat.S_IFLNK | 0o777, b"/etc/passwd"), "symlinks"),
    "device": (_with_mode("dev", stat.S_IFCHR | 0o666), "not a regular file"),
    "fifo": (_with_mode("pipe", stat.S_IFIFO | 0o666), "not a regular file"),
    "duplicate-names": (_duplicated(), "more than once"),
    "encrypted": (_encrypted(), "encrypted"),
    "zip-bomb": (_bomb(), "zip bomb"),
    "huge-file": (_declaring(settings.package_max_file_bytes + 1), "the limit for one file"),
    "huge-total": _past_the_total(),
    "too-many-entries": (_many_entries(10_001), "files and folders; the limit is"),
    "no-predict": (make_zip({"model.onnx": "x"}), "no predict.py"),
    "nested-predict": (make_zip({"model/predict.py": PREDICT}), "zip the folder's contents"),
    "syntax-error": (make_zip({"predict.py": "def predict(:\n"}), "not valid Python at line 1"),
    "requirements-index-url": (
        make_zip({"predict.py": PREDICT, "requirements.txt": "numpy\n--index-url http://x\n"}),
        "requirements.txt line 2",
    ),
    "requirements-url": (
        make_zip({"predict.py": PREDICT, "requirements.txt": "evil @ https://x.test/e.whl\n"}),
        "direct URL",
    ),
    "requirements-path": (
        make_zip({"predict.py": PREDICT, "requirements.txt": "# c\n./local/pkg\n"}),
        "requirements.txt line 2",
    ),
    "requirements-editable": (
        make_zip({"predict.py": PREDICT, "requirements.txt": "-e git+https://x.test/r\n"}),
        "pip options are not allowed",
    ),
    "config-unknown-key": (
        make_zip({"predict.py": PREDICT, "modelfarm.yaml": "gpus: 8\n"}),
        "gpus: Extra inputs are not permitted",
    ),
    "config-over-cap": (
        make_zip({"predict.py": PREDICT, "modelfarm.yaml": "memory_mb: 99999999\n"}),
        "memory_mb",
    ),
    "config-not-yaml": (
        make_zip({"predict.py": PREDICT, "modelfarm.yaml": "a: [unclosed\n"}),
        "not valid YAML",
    ),
}
