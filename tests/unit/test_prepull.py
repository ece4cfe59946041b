"""Pre-pull leaves an image ready for its first container: layers it pulled are flushed to disk
(the engine's first create would otherwise wait for their writeback), and an image already
present costs no flush."""

import pytest

from workers import images
from workers.run import prepull


@pytest.mark.parametrize(("pulled", "flushes"), [(True, 1), (False, 0)])
def test_a_pulled_image_is_flushed_to_disk_and_a_present_one_is_not(monkeypatch, pulled, flushes):
    synced = []
    monkeypatch.setattr(images, "pull", lambda client, image: pulled)
    monkeypatch.setattr(prepull.os, "sync", lambda: synced.append(True))
    prepull.prepare(object(), "127.0.0.1:5000/models/x@sha256:" + "0" * 64)
    assert len(synced) == flushes
