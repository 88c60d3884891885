"""A run whose lines are being stored keeps its lease, whatever its heartbeat does.

A heartbeat skips the rows other transactions hold (``renew_leases``: SKIP
LOCKED on PostgreSQL), and a run printing as fast as it can has its row held
by one batch of lines after another: the batches themselves renew the lease,
so the runner does not lose the run to its own takeover.
"""

from __future__ import annotations

import time
from datetime import timedelta

from craton_wf.db.engine import transaction
from craton_wf.db.models import Run, utcnow
from craton_wf.engine import claims, recording
from craton_wf.engine.recording import LogBatch, LogRecord
from tests.unit.test_engine import setup_job


def test_a_batch_of_lines_renews_the_runs_lease(sessions, root):  # type: ignore[no-untyped-def]
    setup_job(sessions, root, ["chatty"], hosts=1)
    with transaction(sessions) as session:
        assignment = claims.claim_next_run(session, "runner-1", 0.5)
    assert assignment is not None
    run_id, epoch = assignment.run_id, assignment.epoch
    with transaction(sessions) as session:
        claims.mark_started(session, run_id, "runner-1", epoch, "container-1")
    time.sleep(0.6)  # no heartbeat came: the lease ran out
    lines = LogBatch(
        [LogRecord("stdout", utcnow(), "still printing")],
        first_seq=1,
        max_line_bytes=1024,
        lease_seconds=60,
    )
    with transaction(sessions) as session:
        recording.append_logs(session, run_id, "runner-1", epoch, lines)
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert run.lease_expires_at is not None
        assert run.lease_expires_at > utcnow() + timedelta(seconds=50)
        assert claims.claim_next_run(session, "runner-2", 30) is None  # nothing to take over
