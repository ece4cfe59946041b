"""Pre-pull's standby containers in the warm pool (workers/run/pool.py), with a fake container
(the real ones: tests/integration/test_prepull.py): a standby goes only into room left free,
stops nobody's warm container for it, is the first stopped when room is wanted, and the first
job of any user takes it, after which it is that user's alone."""

import time
from contextlib import nullcontext

import pytest

from core.settings import settings
from workers import images
from workers.run import pool
from workers.run.sandbox import Limits


class FakeContainer:
    def __init__(self, client, image, key, *, limits, owner) -> None:
        self.key, self.limits, self.stopped = key, limits, False
        self.last_used = time.monotonic()
        self.container = self

    def is_alive(self) -> bool:
        return not self.stopped

    def discard(self) -> None:
        self.stopped = True

    def kill(self) -> None:
        self.stopped = True

    def predict_all(self, requests, live=None):
        return ["result"] * len(requests)


@pytest.fixture
def warm_pool(monkeypatch):
    monkeypatch.setattr(pool, "WarmContainer", FakeContainer)
    monkeypatch.setattr(images, "pull", lambda client, image: False)
    monkeypatch.setattr(pool, "_reusable", lambda result, limits: True)
    monkeypatch.setattr(settings, "warm_max", 2)
    monkeypatch.setattr(settings, "warm_memory_mb", 10_000)
    made = pool.WarmPool("test")
    made._client = object()
    return made


class Watch:
    canceled = False

    def running(self, kill):
        return nullcontext()


LIMITS = Limits.for_model(None)


def test_the_first_job_of_any_user_takes_the_standby_and_keeps_it(warm_pool):
    assert warm_pool.standby("model-a", LIMITS)
    (standby,) = warm_pool._idle
    assert warm_pool.run("model-a", "alice", LIMITS, ["request"], Watch()) == ["result"]
    assert warm_pool._idle == [standby] and standby.key == ("model-a", "alice", LIMITS)
    warm_pool.run("model-a", "bob", LIMITS, ["request"], Watch())  # a container of his own
    assert {c.key[1] for c in warm_pool._idle} == {"alice", "bob"}
    assert not standby.stopped


def test_a_standby_stops_no_container_and_is_stopped_first_for_room(warm_pool):
    warm_pool.run("model-a", "alice", LIMITS, ["request"], Watch())
    (alices,) = warm_pool._idle
    assert warm_pool.standby("model-b", LIMITS)
    standby = warm_pool._idle[0]
    assert not warm_pool.standby("model-c", LIMITS)  # the pool is full: alice's stays
    assert not alices.stopped and len(warm_pool._idle) == 2
    warm_pool.run("model-c", "bob", LIMITS, ["request"], Watch())  # room wanted
    assert standby.stopped and not alices.stopped


def test_a_standby_that_died_is_started_again_at_the_next_notice(warm_pool):
    assert warm_pool.standby("model-a", LIMITS)
    (dead,) = warm_pool._idle
    dead.stopped = True  # removed behind the pool's back
    assert warm_pool.standby("model-a", LIMITS)
    assert any(c is not dead and not c.stopped for c in warm_pool._idle)
