"""A worker host's cache budget on the real engine (workers/cache.py): the least recently used
images and wheels go first, an image a container uses stays, and the trimming stops once the
cache fits. The test's images carry uses recorded long ago, so that they, and nothing the
stack's workers use, are the oldest on the engine."""

import contextlib
import os
from collections.abc import Iterator

import pytest
from docker.errors import ImageNotFound

from core.settings import settings
from workers import cache

MB = 1024**2


@pytest.fixture
def images(docker_client, tmp_path) -> Iterator[list[str]]:
    """Four images on the base image, each with a layer of 1 MB of its own."""
    made = []
    for name in "abcd":
        context = tmp_path / name
        context.mkdir()
        (context / "blob").write_bytes(os.urandom(MB))
        (context / "Dockerfile").write_text(f"FROM {settings.base_image}\nCOPY blob /blob\n")
        image, _ = docker_client.images.build(
            path=str(context), tag=f"modelfarm-test/cache:{name}", network_mode="none", rm=True
        )
        made.append(image.id)
    yield made
    for image_id in made:
        for container in docker_client.containers.list(all=True, filters={"ancestor": image_id}):
            container.remove(force=True)
        with contextlib.suppress(ImageNotFound):  # trimmed by the test
            docker_client.images.remove(image_id, force=True)
    cache._redis.zrem(cache.USES_KEY, *made)


def test_the_least_recently_used_go_first_and_what_is_in_use_stays(docker_client, images, tmp_path):
    a, b, c, d = images
    cache._redis.zadd(cache.USES_KEY, {a: 1, b: 2, c: 3, d: 4})  # used in that order, long ago
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    old_wheel, new_wheel = wheels / "old-1.0-py3-none-any.whl", wheels / "new-1.0-py3-none-any.whl"
    for wheel in (old_wheel, new_wheel):
        wheel.write_bytes(os.urandom(MB))
    os.utime(old_wheel, (1.5, 1.5))  # used between a and b
    held = docker_client.containers.create(b, ["true"])  # b is in use
    size = docker_client.df()["LayersSize"] + 2 * MB
    removed = cache.trim(docker_client, size - int(2.5 * MB), wheels)
    assert removed == [a, str(old_wheel), c]
    present = {image.id for image in docker_client.images.list()}
    assert a not in present and c not in present and {b, d} <= present
    assert new_wheel.exists() and not old_wheel.exists()
    held.remove(force=True)


def test_a_cache_within_its_budget_is_left_alone(docker_client, images, tmp_path):
    kept = tmp_path / "kept"  # a folder of kept files (trimmed with every file under it)
    (kept / "owner").mkdir(parents=True)
    (kept / "owner" / "content").write_bytes(os.urandom(MB // 2))
    size = docker_client.df()["LayersSize"] + MB // 2
    assert cache.trim(docker_client, size + MB, kept) == []
    assert set(images) <= {image.id for image in docker_client.images.list()}
