"""Fixtures for the cluster tests: scripts/cluster.sh builds a farm of six hosts (network
namespaces, each worker host with its own Docker engine) for the session and removes it after.

Every user the tests make lives in the cluster's own database, which `down` removes whole."""

import subprocess
from collections.abc import Iterator

import pytest

from tests.cluster.cluster import Cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    farm = Cluster()
    farm.script("up", timeout=600)
    try:
        yield farm
    finally:
        farm.close()
        subprocess.run([str(farm.SCRIPT), "down"], check=False, timeout=300)


@pytest.fixture
def user(cluster: Cluster):
    client = cluster.register()
    yield client
    client.close()
