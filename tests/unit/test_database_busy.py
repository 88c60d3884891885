"""A database that gives up waiting for a lock answers 503 with Retry-After, not 500;
reading requests never wait for SQLite's write lock, nor write the token's last use
in their own transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from craton_wf.api.app import create_app
from craton_wf.db.engine import is_sqlite, make_engine, make_session_factory, transaction
from craton_wf.db.models import ApiToken
from tests.conftest import Credentials


@contextmanager
def writes_held(url: str) -> Iterator[None]:
    """Another connection holding what the API's writes need: SQLite's write lock,
    or (PostgreSQL) the clouds table against writers."""
    if is_sqlite(url):
        connection = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    engine = create_engine(url)
    with engine.connect() as conn:
        conn.execute(text("LOCK TABLE clouds IN EXCLUSIVE MODE"))
        yield
        conn.rollback()
    engine.dispose()


@pytest.fixture
def impatient(settings, root: Credentials) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app on sessions that wait 0.3 s for a lock."""
    settings = settings.model_copy(update={"sqlite_lock_timeout_seconds": 0.3})
    if is_sqlite(settings.database_url):
        engine = make_engine(settings)
    else:
        engine = create_engine(
            settings.database_url, connect_args={"options": "-c lock_timeout=300"}
        )
    with TestClient(
        create_app(settings, make_session_factory(engine)), headers=root.headers
    ) as client:
        yield client
    engine.dispose()


def test_a_write_that_times_out_on_a_lock_answers_503_with_retry_after(
    impatient: TestClient, settings
) -> None:  # type: ignore[no-untyped-def]
    assert impatient.post("/v1/clouds", json={"name": "before"}).status_code == 201
    with writes_held(settings.database_url):
        refused = impatient.post("/v1/clouds", json={"name": "during"})
        listed = impatient.get("/v1/clouds")
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert refused.json() == {
        "message": "The database is busy; try again shortly.",
        "status": 503,
        "code": "database_busy",
    }
    assert listed.status_code == 200, listed.text
    assert [c["name"] for c in listed.json()["clouds"]] == ["before"]
    assert impatient.post("/v1/clouds", json={"name": "after"}).status_code == 201


def _last_used(sessions, token: str):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return session.execute(select(ApiToken.last_used_at).where(ApiToken.prefix == token[:10]))


def test_a_read_notes_the_tokens_last_use_without_waiting_for_the_write_lock(
    impatient: TestClient, settings, sessions, root: Credentials
) -> None:  # type: ignore[no-untyped-def]
    if not is_sqlite(settings.database_url):
        pytest.skip("SQLite's database-wide write lock")
    with writes_held(settings.database_url):
        assert impatient.get("/v1/clouds").status_code == 200
    assert _last_used(sessions, root.token).scalar_one() is None  # left for its next use
    assert impatient.get("/v1/clouds").status_code == 200
    assert _last_used(sessions, root.token).scalar_one() is not None
