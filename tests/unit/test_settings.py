"""The settings object: environment overrides, production safety, presigned URL hosts."""

import subprocess
import sys
from urllib.parse import urlparse

import pytest
from pydantic import ValidationError

from core.settings import DEV_JWT_SECRET, Settings
from tests.utils import ROOT


def test_environment_overrides_every_field(monkeypatch):
    monkeypatch.setenv("MODELFARM_SANDBOX_MEMORY_MB", "300")
    monkeypatch.setenv("MODELFARM_REGISTRY", "127.0.0.1:5999")
    loaded = Settings()
    assert loaded.sandbox_memory_mb == 300
    assert loaded.registry == "127.0.0.1:5999"


def test_production_refuses_the_default_jwt_secret():
    with pytest.raises(ValidationError, match="MODELFARM_JWT_SECRET"):
        Settings(environment="production", jwt_secret=DEV_JWT_SECRET)
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(environment="production", jwt_secret="short")
    assert Settings(environment="production", jwt_secret="x" * 40).environment == "production"


def test_api_process_refuses_to_start_in_production_with_the_default_secret():
    env = {"MODELFARM_ENVIRONMENT": "production", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", "import api.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "MODELFARM_JWT_SECRET" in result.stderr


def test_presigned_urls_are_signed_for_the_public_endpoint(monkeypatch):
    from core import storage as storage_module

    monkeypatch.setattr(
        storage_module, "settings", Settings(s3_public_endpoint="files.example.test:9000")
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
