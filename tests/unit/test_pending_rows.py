"""Rows inserted at the end of an engine batch (events, log lines): on PostgreSQL
by COPY, elsewhere by one multi-row insert; either way what is read back is
what was written, in order, and a batch or transaction that fails leaves
nothing. Outside a batch, rows are inserted at once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from craton_wf.db.engine import is_transient, retrying, transaction
from craton_wf.db.models import JobEvent, Run, RunLog
from craton_wf.engine._pending import insert_later
from craton_wf.engine.events import record_event
from craton_wf.engine.writes import batched_writes
from tests.conftest import POSTGRES_URL
from tests.unit.test_engine import setup_job

AWKWARD = ["tab\there", "new\nline", "back\\slash", r"\N", "", "ünïcødé ✓", "end\r"]


def test_rows_come_back_as_written_in_order(sessions, root):  # type: ignore[no-untyped-def]
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    when = datetime(2026, 12, 2, 3, 4, 5, 678901, tzinfo=UTC)
    with transaction(sessions) as session, batched_writes(session):
        run_id = session.execute(select(Run.id).where(Run.job_id == job_id)).scalar_one()
        for index, message in enumerate(AWKWARD):
            record_event(session, job_id, "note", message, run_id=run_id, n=index, deep={"a": [1]})
        record_event(session, job_id, "bare")  # no run, no runner, no data
        insert_later(
            session,
            RunLog,
            [
                {"run_id": run_id, "job_id": job_id, "seq": 1000 + i, "ts": when}
                | {"stream": "stdout", "line": line}
                for i, line in enumerate(AWKWARD)
            ],
        )
    with transaction(sessions) as session:
        events = list(
            session.execute(
                select(JobEvent)
                .where(JobEvent.job_id == job_id, JobEvent.kind.in_(["note", "bare"]))
                .order_by(JobEvent.id)
            ).scalars()
        )
        assert [e.message for e in events] == [*AWKWARD, ""]
        assert [e.data for e in events] == [
            *({"n": i, "deep": {"a": [1]}} for i in range(len(AWKWARD))),
            {},
        ]
        assert events[-1].run_id is None and events[-1].runner_id is None
        assert all(e.created_at.tzinfo is not None for e in events)
        lines = list(
            session.execute(
                select(RunLog)
                .where(RunLog.run_id == run_id, RunLog.seq >= 1000)
                .order_by(RunLog.id)
            ).scalars()
        )
        assert [line.line for line in lines] == AWKWARD
        assert {line.ts for line in lines} == {when}


def test_a_rolled_back_transaction_inserts_nothing(sessions, root):  # type: ignore[no-untyped-def]
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    before = _count_events(sessions, job_id)
    with pytest.raises(RuntimeError), transaction(sessions) as session, batched_writes(session):
        record_event(session, job_id, "never")
        raise RuntimeError("changed my mind")
    with transaction(sessions) as session:  # the next transaction does not inherit the rows
        session.execute(select(1))
    assert _count_events(sessions, job_id) == before


def test_a_bad_row_fails_the_commit_and_stores_none(sessions, root):  # type: ignore[no-untyped-def]
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    before = _count_events(sessions, job_id)
    with pytest.raises(IntegrityError), transaction(sessions) as session, batched_writes(session):
        record_event(session, job_id, "fine")
        record_event(session, job_id + 999, "names no job")
    assert _count_events(sessions, job_id) == before


@pytest.mark.skipif(not POSTGRES_URL, reason="a server connection to terminate")
def test_a_connection_lost_while_copying_is_retried_and_stores_the_rows_once(sessions, root):  # type: ignore[no-untyped-def]
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    before = _count_events(sessions, job_id)
    attempts = []

    def write(session):  # type: ignore[no-untyped-def]
        attempts.append(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
        with batched_writes(session):
            record_event(session, job_id, "once")
            if len(attempts) == 1:  # this transaction's backend dies before the COPY
                with transaction(sessions) as other:
                    other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": attempts[0]})

    retrying(sessions, write, patience=30)
    assert len(attempts) == 2
    assert _count_events(sessions, job_id) == before + 1


@pytest.mark.skipif(not POSTGRES_URL, reason="a server connection to terminate")
def test_a_lost_connection_is_raised_as_a_transient_database_error(sessions, root):  # type: ignore[no-untyped-def]
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    with (
        pytest.raises(Exception) as raised,
        transaction(sessions) as session,
        batched_writes(session),  # its rows are copied at its end, after the backend died
    ):
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        record_event(session, job_id, "lost")
        with transaction(sessions) as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    assert is_transient(raised.value), repr(raised.value)


def _count_events(sessions, job_id):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return len(session.execute(select(JobEvent.id).where(JobEvent.job_id == job_id)).all())
