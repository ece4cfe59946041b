"""The settings object: environment overrides, secrets without defaults, presigned URL hosts."""

import subprocess
import sys
from urllib.parse import urlparse

import pytest
from pydantic import ValidationError

from core.settings import Settings
from tests.utils import ROOT


def test_environment_overrides_every_field(monkeypatch):
    monkeypatch.setenv("MODELFARM_SANDBOX_MEMORY_MB", "300")
    monkeypatch.setenv("MODELFARM_REGISTRY", "127.0.0.1:5999")
    loaded = Settings()
    assert loaded.sandbox_memory_mb == 300
    assert loaded.registry == "127.0.0.1:5999"


def test_no_secret_has_a_default(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env, no generated secrets
    loaded = Settings(_secrets_dir=str(tmp_path))
    assert loaded.jwt_secret == loaded.s3_access_key == loaded.s3_secret_key == ""


def test_a_short_jwt_secret_is_refused():
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(jwt_secret="short")
    assert Settings(jwt_secret="x" * 40).jwt_secret == "x" * 40


def test_api_process_refuses_to_start_without_a_secret(tmp_path):
    """With no secret in the environment, .env or the data directory, the API exits at once."""
    env = {"PATH": "/usr/bin:/bin", "MODELFARM_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    serve = "import uvicorn; uvicorn.run('api.main:app', port=0, lifespan='on')"
    result = subprocess.run(
        [sys.executable, "-c", serve], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "MODELFARM_JWT_SECRET is not set" in result.stderr


def test_secrets_are_generated_once_private_and_kept(monkeypatch, tmp_path):
    from core import secrets

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELFARM_DATA_DIR", str(tmp_path / "data"))
    assert set(secrets.ensure()) == {"jwt_secret", "s3_access_key", "s3_secret_key", "database_url"}
    folder = tmp_path / "data" / "secrets"
    first = (folder / "modelfarm_jwt_secret").read_text()
    assert len(first) >= 32
    assert (folder / "modelfarm_jwt_secret").stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    assert secrets.ensure() == []
    assert (folder / "modelfarm_jwt_secret").read_text() == first
    assert Settings(_secrets_dir=str(folder)).jwt_secret == first


def test_a_configured_secret_is_not_generated(monkeypatch, tmp_path):
    from core import secrets

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELFARM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MODELFARM_DATABASE_URL", "sqlite:///x.db")
    assert "database_url" not in secrets.ensure()


def test_presigned_urls_are_signed_for_the_public_endpoint(monkeypatch):
    from core import storage as storage_module

    monkeypatch.setattr(
        storage_module,
        "settings",
        Settings(
            s3_public_endpoint="files.example.test:9000", s3_access_key="k", s3_secret_key="s" * 20
        ),
    )
    store = storage_module.Storage()
    url = urlparse(store.presigned_put("packages/x.zip"))
    assert url.netloc == "files.example.test:9000"
    assert "X-Amz-Signature=" in url.query
    internal = urlparse(store.client._base_url._url.geturl())
    assert internal.netloc != url.netloc


def test_env_example_documents_every_setting():

    text = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"MODELFARM_{name.upper()}=" in text, name


def test_input_limit_must_fit_the_sandbox_tmp():
    with pytest.raises(ValidationError, match="SANDBOX_TMP_MB"):
        Settings(max_input_bytes=300 * 1024**2, sandbox_tmp_mb=256)
