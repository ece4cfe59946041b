"""The client's own deadline on each database call.

PostgreSQL's statement_timeout and lock_timeout (core/db.py) end a slow statement, but only a
running server applies them: a frozen one (a stalled disk, a SIGSTOP) never answers, and the
driver would wait for good, holding its thread (or, for the API's reads, its event loop). A
watchdog thread shuts the socket of a call past its deadline; the driver then raises
OperationalError, which the API answers as a 503 and the pool counts as a disconnect (the
connection is replaced). The grace lets a running server's own timeout, which leaves the
connection usable, come first.

After a call was cut, or a connection could not be made, the process's calls fail at once (as a
503) rather than each wait out its deadline, until a probe in the background gets an answer: the
API's reads run on its event loop, where requests waiting one after another would add up their
waits.
"""

import socket
import threading
import time
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

GRACE_S = 0.25
CHECK_EVERY_S = 0.05
PROBE_EVERY_S = 1.0

_lock = threading.Lock()
# id of a DBAPI connection in a call -> (when its call is given up, the connection, its engine)
_calls: dict[int, tuple[float, Any, Engine]] = {}
_watchdog: threading.Thread | None = None
_unanswered = threading.Event()
_marking = threading.Lock()
_probe = threading.local()


class Unanswered(Exception):
    """The database went unanswered, and has not answered a probe since: no call is made."""


def refuse_while_unanswered() -> None:
    if _unanswered.is_set() and not getattr(_probe, "running", False):
        raise OperationalError(None, None, Unanswered("the database has not answered lately"))


def _mark_unanswered(engine: Engine) -> None:
    with _marking:
        if _unanswered.is_set():
            return
        _unanswered.set()
    threading.Thread(target=_probe_until_answered, args=(engine,), daemon=True).start()


def _probe_until_answered(engine: Engine) -> None:
    _probe.running = True
    while True:
        time.sleep(PROBE_EVERY_S)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # unanswered, or down: probed again
            continue
        _unanswered.clear()
        return


def arm(dbapi_connection, deadline_s: float, engine: Engine) -> None:
    """Cuts the connection's call if it is not over within deadline_s."""
    with _lock:
        _calls[id(dbapi_connection)] = (time.monotonic() + deadline_s + GRACE_S, dbapi_connection,
                                        engine)  # fmt: skip
    _start_watchdog()


def disarm(dbapi_connection) -> None:
    with _lock:
        _calls.pop(id(dbapi_connection), None)


def watch(engine: Engine, deadline_s: float) -> None:
    """Gives every statement, commit and rollback on the engine's connections deadline_s."""

    def arm_(dbapi_connection) -> None:
        arm(dbapi_connection, deadline_s, engine)

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(_conn, cursor, *_args) -> None:
        refuse_while_unanswered()
        arm_(cursor.connection)

    @event.listens_for(engine, "after_cursor_execute")
    def _answered(_conn, cursor, *_args) -> None:
        disarm(cursor.connection)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _ending(conn) -> None:
        if not conn.invalidated:  # an invalidated one has nothing left to end
            arm_(conn.connection.dbapi_connection)

    @event.listens_for(engine, "reset")
    def _reset(dbapi_connection, _record, _state) -> None:  # the pool's rollback on return
        arm_(dbapi_connection)

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection, _record) -> None:
        if dbapi_connection is not None:
            disarm(dbapi_connection)

    @event.listens_for(engine, "do_connect")
    def _connecting(*_args) -> None:
        refuse_while_unanswered()

    @event.listens_for(engine, "handle_error")
    def _failed(context) -> None:
        if context.connection is None:  # connecting failed
            if not isinstance(context.original_exception, OperationalError):
                _mark_unanswered(context.engine)
        elif context.execution_context is not None:  # a statement failed
            disarm(context.execution_context.cursor.connection)


def _start_watchdog() -> None:
    global _watchdog
    if _watchdog is None or not _watchdog.is_alive():
        with _lock:
            if _watchdog is None or not _watchdog.is_alive():
                _watchdog = threading.Thread(target=_cut_overdue_calls, daemon=True)
                _watchdog.start()


def _cut_overdue_calls() -> None:
    while True:
        time.sleep(CHECK_EVERY_S)
        now = time.monotonic()
        with _lock:
            for key in [key for key, (deadline, *_) in _calls.items() if deadline < now]:
                _deadline, connection, engine = _calls.pop(key)
                if _shut(connection):
                    _mark_unanswered(engine)


def _shut(connection) -> bool:
    """Ends the connection under the driver's feet: its wait returns, with an error. Not one
    closed meanwhile (its descriptor may be another socket's by now); under the lock, so it
    is not closed while this runs unless its call ended (a call's end takes the lock)."""
    if connection.closed:
        return False
    try:
        with socket.socket(fileno=socket.dup(connection.fileno())) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        return False
    return True
