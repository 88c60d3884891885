"""Column values staged on loaded rows (engine._staged) in an engine batch: written
with one statement per table before the transaction's next statement or at the
end of the batch, never by a batch that fails; what is read back is what was
staged. Outside a batch, staged values are set as the ORM sets them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from craton_wf.db.engine import transaction
from craton_wf.db.models import Run
from craton_wf.engine._staged import stage, write_staged
from craton_wf.engine.writes import batched_writes
from tests.unit.test_engine import setup_job

WHEN = datetime(2026, 12, 3, 4, 5, 6, 789012, tzinfo=UTC)


def _runs(sessions, job_id):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return list(
            session.execute(select(Run).where(Run.job_id == job_id).order_by(Run.id)).scalars()
        )


def test_staged_values_are_stored_with_the_commit_whatever_their_type(sessions, root):  # type: ignore[no-untyped-def]
    job_id = setup_job(sessions, root, ["one"], hosts=3)
    with transaction(sessions) as session, batched_writes(session):
        first, second, third = session.execute(
            select(Run).where(Run.job_id == job_id).order_by(Run.id)
        ).scalars()
        stage(
            session,
            first,
            error="tab\tnew\nline ✓",
            finished_at=WHEN,
            outputs={"a": [1, {"b": None}]},
        )
        stage(session, second, exit_code=75, error=None)  # other columns: its own values kept
        stage(session, third, log_seq=7)
        stage(session, third, log_seq=9, deadline=WHEN + timedelta(seconds=1))  # merged, later wins
        assert first.error == "tab\tnew\nline ✓"  # the object holds them at once
        assert not session.dirty  # and the unit of work has nothing to write
    first, second, third = _runs(sessions, job_id)
    assert (first.error, first.finished_at, first.outputs) == (
        "tab\tnew\nline ✓",
        WHEN,
        {"a": [1, {"b": None}]},
    )
    assert (first.exit_code, first.log_seq, first.deadline) == (None, 0, None)
    assert (second.exit_code, second.error, second.finished_at, second.outputs) == (
        75,
        None,
        None,
        {},
    )
    assert (third.log_seq, third.deadline, third.error) == (9, WHEN + timedelta(seconds=1), None)


def test_the_next_statement_sees_staged_values(sessions, root):  # type: ignore[no-untyped-def]
    job_id = setup_job(sessions, root, ["one"], hosts=2)
    with transaction(sessions) as session, batched_writes(session):
        runs = list(session.execute(select(Run).where(Run.job_id == job_id)).scalars())
        for run in runs:
            stage(session, run, status="QUEUED", attempt=4)
        # A plain query of the same transaction, no ORM flush involved.
        queued = session.execute(
            select(func.count()).select_from(Run).where(Run.job_id == job_id, Run.attempt == 4)
        ).scalar_one()
        assert queued == 2


def test_a_rolled_back_transaction_writes_nothing_staged(sessions, root):  # type: ignore[no-untyped-def]
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    with pytest.raises(RuntimeError), transaction(sessions) as session, batched_writes(session):
        run = session.execute(select(Run).where(Run.job_id == job_id)).scalar_one()
        stage(session, run, error="never")
        raise RuntimeError("changed my mind")
    with transaction(sessions) as session:  # the next transaction on that connection writes none
        session.execute(select(1))
    [run] = _runs(sessions, job_id)
    assert run.error is None


def test_the_last_value_set_wins_between_staged_and_orm_changes(sessions, root):  # type: ignore[no-untyped-def]
    job_id = setup_job(sessions, root, ["one"], hosts=2)
    with transaction(sessions) as session, batched_writes(session):
        first, second = session.execute(
            select(Run).where(Run.job_id == job_id).order_by(Run.id)
        ).scalars()
        stage(session, first, error="staged")
        first.error = "set on the object after"  # the ORM's flush comes after the staged write
        second.error = "set on the object before"
        stage(session, second, error="staged after")  # cancels the object's pending change
        write_staged(session)
    first, second = _runs(sessions, job_id)
    assert first.error == "set on the object after"
    assert second.error == "staged after"


def test_a_session_closed_without_committing_writes_nothing_staged(sessions, root):  # type: ignore[no-untyped-def]
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    session = sessions()
    batched_writes(session).__enter__()  # a batch that never ends
    run = session.execute(select(Run).where(Run.job_id == job_id)).scalar_one()
    stage(session, run, error="never")
    session.close()
    for _ in range(3):  # whichever pooled connection the next sessions get
        with transaction(sessions) as other:
            other.execute(select(1))
    [run] = _runs(sessions, job_id)
    assert run.error is None


def test_outside_a_batch_staged_values_are_written_by_the_session(sessions, root):  # type: ignore[no-untyped-def]
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    with transaction(sessions) as session:
        run = session.execute(select(Run).where(Run.job_id == job_id)).scalar_one()
        stage(session, run, error="set", exit_code=3)
        assert session.dirty  # the unit of work writes them with the commit
    [run] = _runs(sessions, job_id)
    assert (run.error, run.exit_code) == ("set", 3)
