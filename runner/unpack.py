"""Run by the build's smoke test before its image exists (workers/build/smoke.py): unpacks the
image's own layers, tars one after another on stdin, into the tmpfs folders that stand in for
them, then becomes the command given (the runner). A big model's files are mounted instead, and
its stdin closed with nothing sent. Standard library only.

Only regular files under model/ and opt/modelfarm/ are taken (the worker made the tars; this
checks them anyway), each read-only, as in the image.
"""

import os
import shutil
import sys
import tarfile

# Where an image holds its own layers' files (the COPY destinations of core/Dockerfile.template).
MODEL_FOLDER, FARM_FOLDER = "model", "opt/modelfarm"
FOLDERS = (MODEL_FOLDER, FARM_FOLDER)


def _inside(name: str) -> bool:
    return name.startswith(tuple(folder + "/" for folder in FOLDERS))


def unpack(stream, root: str = "/") -> None:
    if not stream.peek(1):  # nothing sent: the files are mounted (a big model's)
        return
    # ignore_zeros: read on past each tar's end, into the next
    with tarfile.open(fileobj=stream, mode="r|", ignore_zeros=True) as tar:
        for member in tar:
            name = member.name
            above = any(folder.startswith(name + "/") for folder in FOLDERS)
            if member.isdir() and (name in FOLDERS or above or _inside(name)):
                continue  # the folders are there already, or made below
            if not member.isfile() or not _inside(name) or ".." in name.split("/"):
                sys.exit(f"unpack: refusing {name!r}")
            target = os.path.join(root, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as out:
                shutil.copyfileobj(tar.extractfile(member), out)
            os.chmod(target, 0o555 if member.mode & 0o111 else 0o444)


if __name__ == "__main__":
    unpack(sys.stdin.buffer)
    os.execv(sys.argv[1], sys.argv[1:])
