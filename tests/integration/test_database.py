"""Alembic is the schema's only source: it must build the same schema on PostgreSQL and SQLite,
and the API must work on SQLite, the zero-setup default. The API's read engine never waits for a
connection and cuts a long statement short."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from core import db
from core.db import make_engine
from core.models import Base
from core.settings import settings
from tests.integration.stack import wait_for
from tests.utils import ROOT


def _alembic(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _assert_schema_matches_models(url: str) -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_migrations_on_sqlite_match_the_models_and_downgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'farm.db'}"
    command.upgrade(_alembic(url), "head")
    _assert_schema_matches_models(url)
    command.downgrade(_alembic(url), "base")
    engine = create_engine(url)
    with engine.connect() as connection:
        tables = connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
        assert {row[0] for row in tables} == {"alembic_version"}
    engine.dispose()


@pytest.fixture
def scratch_postgres():
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the suite's database is not PostgreSQL")
    name = f"modelfarm_scratch_{uuid.uuid4().hex[:8]}"
    admin = create_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrations_on_postgresql_match_the_models_and_downgrade(scratch_postgres):
    command.upgrade(_alembic(scratch_postgres), "head")
    _assert_schema_matches_models(scratch_postgres)
    command.downgrade(_alembic(scratch_postgres), "base")
    engine = create_engine(scratch_postgres)
    with engine.connect() as connection:
        ours = "('job_status', 'version_status', 'visibility')"
        types = connection.execute(text(f"SELECT typname FROM pg_type WHERE typname IN {ours}"))
        assert list(types) == []
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_api_works_on_sqlite(tmp_path):
    """A second API process on a SQLite file: register, log in, create and list models."""
    url = f"sqlite:///{tmp_path / 'farm.db'}"
    command.upgrade(_alembic(url), "head")
    port = _free_port()
    env = {**os.environ, "MODELFARM_DATABASE_URL": url}
    uvicorn = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*uvicorn, "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=30) as http:
            credentials = {"email": "lite@example.com", "password": "lite-password"}
            assert http.post("/api/users/register", json=credentials).status_code == 201
            assert http.post("/api/users/register", json=credentials).status_code == 409
            form = {"username": credentials["email"], "password": credentials["password"]}
            token = http.post("/api/users/login", data=form).json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            assert http.post("/api/models", json={"name": "lite"}).status_code == 201
            assert http.post("/api/models", json={"name": "lite"}).status_code == 409
            assert [m["name"] for m in http.get("/api/models").json()["items"]] == ["lite"]
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def quick_read_engine(monkeypatch):
    monkeypatch.setattr(settings, "request_deadline_s", 0.5)
    engine = db._read_engine(settings.database_url)
    yield engine
    engine.dispose()


def test_the_read_engine_opens_a_connection_rather_than_wait_for_one(quick_read_engine):
    # Reads run on the event loop: a wait there for a connection would stop the whole process.
    connections = [quick_read_engine.connect() for _ in range(15)]
    try:
        assert [c.execute(text("SELECT 1")).scalar() for c in connections] == [1] * 15
    finally:
        for connection in connections:
            connection.close()


def test_the_read_engine_cuts_a_long_statement_short(quick_read_engine):
    with quick_read_engine.connect() as connection:
        with pytest.raises(OperationalError, match="statement timeout"):
            connection.execute(text("SELECT pg_sleep(30)"))
        assert connection.execute(text("SELECT 1")).scalar() == 1  # and goes on


def test_a_call_to_a_frozen_server_is_cut_short_and_the_pool_goes_on(quick_read_engine):
    """A frozen server (here its backend process, stopped) never applies its own
    statement_timeout: the client's watchdog (core/statement_deadline.py) ends the call, and the
    pool replaces the connection."""
    with quick_read_engine.connect() as connection:
        backend = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        os.kill(backend, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(OperationalError):
                connection.execute(text("SELECT 1"))
            waited = time.monotonic() - started
        finally:
            os.kill(backend, signal.SIGCONT)
    assert waited < 10, f"the call waited {waited:.1f} s"  # not for good: the deadline ended it
    # Until a probe in the background gets an answer, calls fail at once; then they go on.
    with pytest.raises(OperationalError, match="has not answered lately"):
        quick_read_engine.connect()
    wait_for(lambda: _answers(quick_read_engine), "the database to be probed again", 10)


def _answers(engine) -> bool:
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar() == 1
    except OperationalError:
        return False
