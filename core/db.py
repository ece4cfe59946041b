"""Database engine and sessions. The schema comes from Alembic migrations only."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from core.settings import settings

# A pooled connection idle for longer is pinged before use (one round trip more). One in steady
# use is not: under load, pinging at every checkout cost a quarter of a request's database time.
PING_AFTER_IDLE_S = 1.0
_RETURNED_AT = "returned_at"


def make_engine(url: str, **options) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options.setdefault("pool_size", settings.database_pool_size)
    options.setdefault("max_overflow", 10)
    engine = create_engine(url, **options)
    event.listen(engine, "checkin", _note_return)
    event.listen(engine, "checkout", partial(_ping_if_idle, engine.dialect))
    return engine


def _read_engine(url: str) -> Engine:
    """The engine of the API's reads. They run on the event loop (api/deps.py), so they must
    never wait there for a connection a thread holds: this engine has a pool of its own, which
    opens another connection rather than wait (in practice a process uses one, since a read holds
    its connection only while it runs, never across an await). Each statement commits on its own,
    which spares the BEGIN and ROLLBACK round trips around a read's one or two queries; a write
    there (an API token's last use, a webhook secret made on first read) is one statement,
    atomic alone. Its statements and connection attempts are cut short, so that a stuck database
    holds up the loop for at most database_read_timeout_s."""
    if url.startswith("sqlite"):
        return make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    timeout_ms = int(settings.database_read_timeout_s * 1000)
    return make_engine(
        url, pool_size=2, max_overflow=-1, isolation_level="AUTOCOMMIT",
        connect_args={
            "connect_timeout": max(1, round(settings.database_read_timeout_s)),
            "options": f"-c statement_timeout={timeout_ms}",
        },
    )  # fmt: skip


def _note_return(_dbapi_connection, record) -> None:
    record.info[_RETURNED_AT] = time.monotonic()


def _ping_if_idle(dialect, dbapi_connection, record, _proxy) -> None:
    """A connection back from the pool after PING_AFTER_IDLE_S is pinged first; one that
    fails is replaced (the pool retries on DisconnectionError), so after a database restart
    the pool recovers by itself."""
    returned = record.info.get(_RETURNED_AT)
    if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_S:
        return
    try:
        dialect.do_ping(dbapi_connection)
    except dialect.loaded_dbapi.Error as error:
        raise DisconnectionError(f"stale pooled connection: {error}") from error


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the API read while a worker writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


engine = make_engine(settings.database_url)
SessionLocal = sessionmaker(bind=engine, expire_on_commit=False)
read_engine = _read_engine(settings.database_url)
ReadSessionLocal = sessionmaker(bind=read_engine, expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for worker code: committed on success, rolled back on error."""
    with SessionLocal() as session, session.begin():
        yield session
