"""`modelfarm eject`: a version's build context unpacked into a folder of its own, where plain
`docker build --network none` makes the version's image, off the farm."""

import tarfile
import tempfile
from pathlib import Path

from modelfarm.client import Client
from modelfarm.shell import fail


def download_into(farm: Client, version_id: str, folder: Path) -> None:
    """Downloads the version's context and unpacks it into folder (made if missing)."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        fail(f"{folder} is not an empty folder: name a new or an empty one for the context")
    with tempfile.TemporaryDirectory(prefix="modelfarm-eject-") as scratch:
        archive = Path(scratch) / "context.tar.gz"
        farm.download_context(version_id, archive)
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as context:
            # "data": nothing outside folder, no links out of it, no devices, no owners.
            context.extractall(folder, filter="data")
