"""Engine and session factories.

SQLite is the embedded default. Every SQLite transaction starts with
``BEGIN IMMEDIATE``: the API and the runner's threads write concurrently, and a
deferred transaction that later upgrades to a write lock can fail with
``database is locked`` no matter the busy timeout; taking the write lock up
front turns that into a short wait instead. WAL lets readers of other
connections go on meanwhile.
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
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=20,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=pre_ping, pool_size=20, max_overflow=20)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Take transaction control away from pysqlite, so that BEGIN below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
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
