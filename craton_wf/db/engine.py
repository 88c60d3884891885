"""Engine and session factories.

SQLite is the embedded default, with WAL: any number of readers go on while
one connection writes, but only one writes at a time. How a transaction
begins decides whether it waits for that one write lock:

- A write transaction (:func:`make_session_factory`: the runner's, and an API
  request that changes state) begins with ``BEGIN IMMEDIATE``, taking the write
  lock up front. A deferred transaction that reads and then writes upgrades its
  read snapshot to the write lock, and fails at once with ``database is
  locked`` (SQLITE_BUSY_SNAPSHOT) when another connection committed since it
  began, whatever the busy timeout: retrying only the write would act on what
  it read before. Waiting for the lock before the first read turns that into a
  wait of at most ``sqlite_lock_timeout_seconds``.
- A read transaction (:func:`reading`: GET and HEAD requests, and every
  request's authentication and authorization) begins with a plain deferred
  ``BEGIN`` and never takes the write lock, so it neither waits for writers nor
  makes them wait. It must not write; what a request learns there that is
  worth recording (a token's last use) is written in a transaction of its own.
- A try-write transaction (:func:`trying`) begins like a write one but does
  not wait: when another connection holds the lock it fails at once, for a
  write that may be skipped (a token's last use, noted again on its next use).

A wait for the write lock that times out raises ``OperationalError``
(``database is locked``); :func:`is_busy` recognises it, and PostgreSQL's lock
timeouts and serialization failures, which the API answers with 503 and
``Retry-After`` (``craton_wf.api.errors``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from craton_wf.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(settings: Settings, *, pre_ping: bool = True) -> Engine:
    """The engine for ``settings.database_url``.

    ``pre_ping`` tests every pooled connection before use, so a request after a
    database restart does not fail; a standalone runner turns it off, because
    each of its writes goes through :func:`retrying`, which replaces a broken
    connection anyway, and the ping is one more round trip per transaction.
    """
    url = settings.database_url
    if is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": settings.sqlite_lock_timeout_seconds,
            },
            pool_size=20,
            max_overflow=20,
        )
        _configure_sqlite(engine, round(settings.sqlite_lock_timeout_seconds * 1000))
        return engine
    return create_engine(url, pool_pre_ping=pre_ping, pool_size=20, max_overflow=20)


BEGIN_OPTION = "sqlite_begin"  # execution option: "IMMEDIATE" (default), "DEFERRED", "NOWAIT"


def _configure_sqlite(engine: Engine, lock_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Take transaction control away from pysqlite, so that BEGIN below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={lock_timeout_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        mode = conn.get_execution_options().get(BEGIN_OPTION, "IMMEDIATE")
        if mode == "DEFERRED":
            conn.exec_driver_sql("BEGIN")
            return
        if mode == "NOWAIT":
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            finally:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={lock_timeout_ms}")
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep every object they load for their (one transaction's) life.

    The identity map alone holds objects weakly: a row loaded, used and
    dropped in one call is asked for again by the next ``session.get`` of the
    same transaction. A runner recording many runs in one transaction reads a
    job or a user once instead of once per run.
    """
    factory = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)

    @event.listens_for(factory, "loaded_as_persistent")
    def _hold(session: Session, instance: object) -> None:
        session.info.setdefault("held", []).append(instance)

    return factory


def reading(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions like ``factory``'s whose transactions only read: on SQLite they
    begin deferred and never take the write lock (see the module's docstring)."""
    return _with_begin(factory, "DEFERRED")


def trying(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions like ``factory``'s whose write transactions do not wait for
    SQLite's write lock: beginning one fails at once (:func:`is_busy`) while
    another connection writes."""
    return _with_begin(factory, "NOWAIT")


def _with_begin(factory: sessionmaker[Session], mode: str) -> sessionmaker[Session]:
    engine = factory.kw["bind"]
    return make_session_factory(engine.execution_options(**{BEGIN_OPTION: mode}))


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on error."""
    with factory() as session, session.begin():
        yield session


def is_transient(exc: BaseException) -> bool:
    """A database error worth retrying: the connection dropped or the server restarted."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure


def is_conflict(exc: BaseException) -> bool:
    """The database rolled the transaction back to break a deadlock (or a
    serialization failure): the same work, run again, is what the caller meant."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in CONFLICT_SQLSTATES


SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked", "database is busy")
# lock_not_available (lock_timeout), query_canceled (statement_timeout), and the conflicts
BUSY_SQLSTATES = CONFLICT_SQLSTATES | {"55P03", "57014"}


def is_busy(exc: BaseException) -> bool:
    """The database gave up waiting for a lock (SQLite's busy timeout, PostgreSQL's
    lock or statement timeout) or broke a conflict: the same request, sent again
    a little later, may well succeed."""
    if not isinstance(exc, OperationalError):
        return False
    if getattr(exc.orig, "sqlstate", None) in BUSY_SQLSTATES:
        return True
    return str(exc.orig).lower().startswith(SQLITE_BUSY_MESSAGES)


def in_transaction(
    factory: sessionmaker[Session],
    fn: Callable[..., T],
    *args: Any,
    attempts: int = 3,
    **kwargs: Any,
) -> T:
    """Run ``fn(session, ...)`` in a transaction, again when the database broke a deadlock.

    For API calls that lock rows runners lock too (cancelling a job locks the
    job, then its runs; a runner's claim locks a run, then its job).
    """
    for attempt in range(1, attempts):
        try:
            with transaction(factory) as session:
                return fn(session, *args, **kwargs)
        except DBAPIError as exc:
            if not is_conflict(exc):
                raise
            log.info("transaction rolled back to break a deadlock; attempt %d", attempt + 1)
            time.sleep(0.05 * attempt)
    with transaction(factory) as session:  # the last attempt: its error is the caller's
        return fn(session, *args, **kwargs)


def retrying(
    factory: sessionmaker[Session],
    fn: Callable[..., T],
    *args: Any,
    patience: float = 120.0,
    abort: threading.Event | None = None,
    **kwargs: Any,
) -> T:
    """Run ``fn(session, ...)`` in a transaction, retried while the database is unreachable.

    What the runner writes must survive a restarted database or a killed backend:
    it waits with backoff (up to ``patience`` seconds) instead of dropping a
    result. ``fn`` must be idempotent, which every runner write is (leases and
    sequence numbers make a repeated write a no-op).
    """
    delay, deadline = 0.2, time.monotonic() + patience
    while True:
        try:
            with transaction(factory) as session:
                return fn(session, *args, **kwargs)
        except DBAPIError as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            if abort is not None and abort.is_set():
                raise
            log.warning(
                "database unavailable (%s); retrying in %.1fs", type(exc.orig).__name__, delay
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
