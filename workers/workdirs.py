"""Scratch space on the worker's disk, one folder per queue and host, emptied at worker start.

Builds unpack packages and lay out build contexts here (tens of MB each); a killed worker's
leftovers are removed by its successor, as its sandbox containers are.
"""

import shutil
from pathlib import Path

from core.settings import settings
from workers.run.sandbox import owner_for


def work_dir(queue: str) -> Path:
    """The scratch folder of this host's worker for `queue` (created on first use)."""
    path = Path(settings.cache_dir).resolve() / "work" / owner_for(queue)
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_leftovers(queue: str) -> int:
    """Empties the scratch folder a dead predecessor left; returns how many entries it held."""
    leftovers = list(work_dir(queue).iterdir())
    for entry in leftovers:
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return len(leftovers)
