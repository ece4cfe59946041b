"""Fixtures for the cluster tests: scripts/cluster.sh builds a farm of six hosts (network
namespaces, each worker host with its own Docker engine) for these tests and removes it after.

Every user the tests make lives in the cluster's own database, which `down` removes whole."""

import subprocess
from collections.abc import Iterator

import pytest

from tests.cluster.cluster import Cluster


# Package scope: the cluster goes as soon as its tests are done, before the other tests run.
@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    farm = Cluster()
    try:  # a cluster that failed to come up is removed too
        farm.script("up", timeout=600)
        yield farm
    finally:
        farm.close()
        subprocess.run([str(farm.SCRIPT), "down"], check=False, timeout=300)


@pytest.fixture
def user(cluster: Cluster):
    client = cluster.register()
    yield client
    client.close()
