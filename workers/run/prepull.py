"""Pre-pull (MODELFARM_PREPULL): each inference host pulls a version's image as soon as the
version is READY, so that its first job there pays no pull; and starts a standby container of
it (WarmPool.standby, within the warm pool's bounds), so that the first job pays no container
start either: only the model's setup, which the standby runs when that job comes.

The build worker publishes the notice (core/events.py). The pulls go one at a time, in the
order of the notices, through images.pull, which records the use and trims the engine's images
to the cache budget, never removing one a container uses (workers/cache.py). A notice missed
(Redis away, the worker restarting) only means that the first job pulls, as without pre-pull.

A pulled image's layers are then flushed to disk (the engine runs on this host: its socket).
Else the first container of the image pays for it: the engine's first create of a container
syncs a file, and ext4 (data=ordered) makes that wait for every block the pull left dirty, which
the kernel writes back only after 30 s: 0.5 s for 1 GB of weights here, against 0.04 s once
flushed.
"""

import json
import os
import queue
import threading
import time
import uuid

import structlog

from core import events
from core.events import VERSION_READY_CHANNEL
from core.settings import settings
from workers import images
from workers.run import inference

logger = structlog.get_logger(__name__)
_wanted: queue.Queue[tuple[uuid.UUID, str]] = queue.Queue()  # (version, image)


def _noted(payload: bytes) -> None:
    notice = json.loads(payload)
    _wanted.put((uuid.UUID(notice["id"]), notice["image"]))


def pull_forever() -> None:
    while True:
        version_id, image = _wanted.get()
        started = time.monotonic()
        client = images.docker_client(timeout=1800)
        try:
            prepare(client, image)
            inference.standby(version_id)
        except Exception:  # the first job pulls it, or starts its container, then
            logger.warning("pre-pull failed", image=image, exc_info=True)
        else:
            logger.info("pre-pulled", image=image, seconds=round(time.monotonic() - started, 2))
        finally:
            client.close()


def prepare(client, image: str) -> None:
    """The image on this host's engine, ready for its first container."""
    if images.pull(client, image):
        os.sync()


def start() -> None:
    """Listens for READY versions and pulls their images, when MODELFARM_PREPULL is on."""
    if not settings.prepull:
        return
    threading.Thread(target=events.listen_forever, args=(VERSION_READY_CHANNEL, _noted),
                     name="prepull-listener", daemon=True).start()  # fmt: skip
    threading.Thread(target=pull_forever, name="prepull", daemon=True).start()
