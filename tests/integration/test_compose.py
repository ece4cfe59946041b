"""docker-compose.yml describes the same stack; Debian's docker-compose validates it."""

import os
import subprocess

import pytest
import yaml

from tests.utils import ROOT

FARM = {"api", "build-worker", "inference-worker", "reconciler"}
SERVICES = {"postgres", "redis", "minio", "registry", *FARM}


def _config(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker-compose", "config"], cwd=ROOT, env=env, capture_output=True, text=True
    )


SECRETS = {
    "MODELFARM_JWT_SECRET": "x" * 40,
    "POSTGRES_PASSWORD": "pg-secret",
    "MINIO_ROOT_USER": "farm",
    "MINIO_ROOT_PASSWORD": "minio-secret",
}


def test_compose_file_is_valid_and_has_every_service():
    done = _config({**os.environ, **SECRETS})
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert set(services) == SERVICES
    for name in FARM:
        assert (
            services[name]["environment"]["MODELFARM_JWT_SECRET"] == SECRETS["MODELFARM_JWT_SECRET"]
        )
    for name in ("api", "build-worker", "inference-worker"):
        assert "/var/run/docker.sock" in str(services[name]["volumes"]), name
    published = [str(port) for service in services.values() for port in service.get("ports", [])]
    for port in ("8000", "9000", "5000"):
        # Published on loopback only: nothing of the farm is exposed to other hosts.
        assert f"127.0.0.1:{port}:{port}/tcp" in published, published


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_compose_refuses_to_start_without_each_secret(secret):
    """No default password or key anywhere: each must be given."""
    env = {**os.environ, **SECRETS}
    del env[secret]
    done = _config(env)
    assert done.returncode != 0
    assert secret in done.stderr
