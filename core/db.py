"""Database engine and sessions. The schema comes from Alembic migrations only."""

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from core import statement_deadline
from core.settings import settings

# A pooled connection idle for longer is pinged before use (one round trip more). One in steady
# use is not: under load, pinging at every checkout cost a quarter of a request's database time.
PING_AFTER_IDLE_S = 1.0
_RETURNED_AT = "returned_at"


def make_engine(url: str, *, deadline_s: float = settings.worker_deadline_s, **options) -> Engine:
    """An engine whose every call gives up after deadline_s: connecting, a statement, a wait
    for a lock (PostgreSQL's own timeouts, which a running server applies), and an answer that
    never comes (a frozen server: core/statement_deadline.py cuts the connection)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options.setdefault("pool_size", settings.database_pool_size)
    options.setdefault("max_overflow", 10)
    timeout_ms = int(deadline_s * 1000)
    engine = create_engine(
        url, pool_timeout=settings.database_pool_timeout_s,
        connect_args={
            "connect_timeout": max(1, math.ceil(deadline_s)),
            "options": f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
        },
        **options,
    )  # fmt: skip
    event.listen(engine, "checkin", _note_return)
    event.listen(engine, "checkout", partial(_ping_if_idle, engine, deadline_s))
    statement_deadline.watch(engine, deadline_s)
    return engine


def _read_engine(url: str) -> Engine:
    """The engine of the API's reads. They run on the event loop (api/deps.py), so they must
    never wait there for a connection a thread holds: this engine has a pool of its own, which
    opens another connection rather than wait (in practice a process uses one, since a read holds
    its connection only while it runs, never across an await). Each statement commits on its own,
    which spares the BEGIN and ROLLBACK round trips around a read's one or two queries; a write
    there (an API token's last use, a webhook secret made on first read) is one statement,
    atomic alone. Its calls have the request path's deadline, so that a stuck database holds up
    the loop for at most request_deadline_s."""
    if url.startswith("sqlite"):
        return make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    return make_engine(
        url, deadline_s=settings.request_deadline_s, pool_size=2, max_overflow=-1,
        isolation_level="AUTOCOMMIT",
    )  # fmt: skip


def _note_return(_dbapi_connection, record) -> None:
    record.info[_RETURNED_AT] = time.monotonic()


def _ping_if_idle(engine: Engine, deadline_s: float, dbapi_connection, record, _proxy) -> None:
    """A connection back from the pool after PING_AFTER_IDLE_S is pinged first (within the
    deadline); one that fails is replaced (the pool retries on DisconnectionError), so after a
    database restart the pool recovers by itself."""
    returned = record.info.get(_RETURNED_AT)
    if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_S:
        return
    statement_deadline.refuse_while_unanswered()
    dialect = engine.dialect
    statement_deadline.arm(dbapi_connection, deadline_s, engine)
    try:
        dialect.do_ping(dbapi_connection)
    except dialect.loaded_dbapi.Error as error:
        raise DisconnectionError(f"stale pooled connection: {error}") from error
    finally:
        statement_deadline.disarm(dbapi_connection)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the API read while a worker writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# The workers' engine, and the API's for writes (its calls have the request path's deadline).
engine = make_engine(settings.database_url)
SessionLocal = sessionmaker(bind=engine, expire_on_commit=False)
request_engine = make_engine(settings.database_url, deadline_s=settings.request_deadline_s)
RequestSessionLocal = sessionmaker(bind=request_engine, expire_on_commit=False)
read_engine = _read_engine(settings.database_url)
ReadSessionLocal = sessionmaker(bind=read_engine, expire_on_commit=False)


@contextmanager
def session_scope(sessions: sessionmaker = SessionLocal) -> Iterator[Session]:
    """A session (a worker's, unless told): committed on success, rolled back on error."""
    with sessions() as session, session.begin():
        yield session
