"""A model that misbehaves on request: the input names the attack to try."""

import os
import socket
import sys
import time
from pathlib import Path


def _attempt(action) -> str:
    try:
        action()
    except Exception as error:  # the point is to report how the sandbox refused
        return f"refused: {type(error).__name__}: {error}"
    return "allowed"


def network(output_dir: Path) -> dict:
    def connect():
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()

    return {
        "connect": _attempt(connect),
        "resolve": _attempt(lambda: socket.getaddrinfo("pypi.org", 443)),
    }


def write_system(output_dir: Path) -> dict:
    return {
        "usr": _attempt(lambda: Path("/usr/evil").write_text("x")),
        "etc": _attempt(lambda: Path("/etc/passwd").write_text("x")),
        "model": _attempt(lambda: Path("/model/predict.py").write_text("x")),
        "uid": os.getuid(),
    }


def environment(output_dir: Path) -> dict:
    return dict(os.environ)


def fork_bomb(output_dir: Path) -> dict:
    children = 0
    try:
        while True:
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
            children += 1
    except OSError as error:
        return {"children": children, "stopped_by": type(error).__name__}


def memory(output_dir: Path) -> dict:
    hog = bytearray(512 * 1024 * 1024)
    return {"allocated": len(hog)}


def sleep_forever(output_dir: Path) -> dict:
    time.sleep(3600)
    return {}


def flood_disk(output_dir: Path) -> dict:
    with (output_dir / "flood.bin").open("wb") as sink:
        while True:
            sink.write(b"\0" * 1024 * 1024)


def many_files(output_dir: Path) -> dict:
    for index in range(500):
        (output_dir / f"f{index}.txt").write_text("x")
    return {}


def shout(output_dir: Path) -> dict:
    for _ in range(20000):
        print("x" * 1000)
        print("y" * 1000, file=sys.stderr)
    return {"shouted": True}


def kernel(output_dir: Path) -> dict:
    """What a kernel exploit would meet: the host's kernel, or gVisor's."""
    return {"release": os.uname().release, "version": Path("/proc/version").read_text()}


def fail(output_dir: Path) -> dict:
    raise ValueError("this input makes no sense")


def predict(input_path: Path, output_dir: Path):
    attack = input_path.read_text().strip()
    return globals()[attack](output_dir)
