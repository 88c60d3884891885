"""The dispatch benchmark's floor: a job's runs driven through the same lease
cycle in hand-written SQL, by one process with one connection (PostgreSQL).

    python -m bench.raw_cycle DATABASE_URL [--batch 128]

It waits for a job with queued runs, as an idle runner does (it looks every
50 ms), drives that job to its end and exits.

Per batch of up to ``--batch`` runs, three transactions, as a runner's
(claim; started; outcome with the log line), and set-based statements only:

1. claim: ``FOR NO KEY UPDATE SKIP LOCKED`` on queued runs, lease owner,
   epoch + 1 and expiry from the database's clock, attempt + 1; the job
   RUNNING on its first claim, with its ``job_started`` event;
2. started: status, ``started_at`` and container id, fenced by owner and
   epoch; a ``run_started`` event each;
3. outcome: the run's log line (its host's snapshot, about the size of the
   payload a no-op container prints) and exit code 0, fenced; a
   ``run_succeeded`` event; the hosts SUCCEEDED; as many pending hosts
   started (their runs queued) as finished; the job SUCCEEDED when no run is
   left, stamped with the database's clock as a runner does.

Events and log lines go in with COPY. What it leaves out, and the platform
does: API tokens for the containers, payloads, the graph of steps (every run
here is one step of its own host), retries, timeouts, cancels, adoption and
log de-duplication, and threads. So the platform's rate over this one is the
share of the machine's ceiling for this cycle that it reaches.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

CLAIM = """
WITH picked AS (
    SELECT id FROM runs
    WHERE job_id = %(job)s AND status = 'QUEUED' AND queued_at <= statement_timestamp()
    ORDER BY queued_at, id
    LIMIT %(limit)s
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE runs SET
    status = 'STARTING',
    lease_owner = %(owner)s,
    lease_epoch = COALESCE(lease_epoch, 0) + 1,
    lease_expires_at = statement_timestamp() + interval '30 seconds',
    attempt = attempt + 1,
    container_name = 'craton-run-' || runs.id || '-' || (attempt + 1) || '-' || uid,
    error = NULL
FROM picked WHERE runs.id = picked.id
RETURNING runs.id, runs.lease_epoch, runs.job_host_id, runs.step_name
"""

JOB_STARTED = """
UPDATE jobs SET status = 'RUNNING', started_at = statement_timestamp()
WHERE id = %(job)s AND status = 'PENDING'
RETURNING id
"""

STARTED = """
UPDATE runs SET status = 'RUNNING', started_at = statement_timestamp(),
    container_id = 'raw-' || runs.id
FROM unnest(%(ids)s::int[], %(epochs)s::int[]) AS held(id, epoch)
WHERE runs.id = held.id AND runs.lease_owner = %(owner)s AND runs.lease_epoch = held.epoch
RETURNING runs.id
"""

FINISHED = """
UPDATE runs SET status = 'SUCCEEDED', exit_code = 0, finished_at = statement_timestamp(),
    lease_owner = NULL, lease_expires_at = NULL, log_seq = 1, log_bytes = held.bytes
FROM unnest(%(ids)s::int[], %(epochs)s::int[], %(bytes)s::int[]) AS held(id, epoch, bytes)
WHERE runs.id = held.id AND runs.lease_owner = %(owner)s AND runs.lease_epoch = held.epoch
RETURNING runs.id
"""

HOSTS_DONE = """
UPDATE job_hosts SET status = 'SUCCEEDED', finished_at = statement_timestamp()
WHERE id = ANY(%(hosts)s) AND status = 'RUNNING'
RETURNING id, host_name
"""

HOSTS_STARTED = """
WITH picked AS (
    SELECT id FROM job_hosts
    WHERE job_id = %(job)s AND status = 'PENDING'
    ORDER BY position LIMIT %(free)s
    FOR NO KEY UPDATE
)
UPDATE job_hosts SET status = 'RUNNING', started_at = statement_timestamp()
FROM picked WHERE job_hosts.id = picked.id
RETURNING job_hosts.id, job_hosts.host_name
"""

RUNS_QUEUED = """
UPDATE runs SET status = 'QUEUED', queued_at = statement_timestamp()
WHERE job_host_id = ANY(%(hosts)s) AND status = 'PENDING'
RETURNING id, step_name
"""

LEFT = "SELECT count(*) FROM runs WHERE job_id = %(job)s AND status <> 'SUCCEEDED'"

JOB_DONE = """
UPDATE jobs SET status = 'SUCCEEDED', finished_at = statement_timestamp(),
    message = %(message)s
WHERE id = %(job)s
"""

Cursor = psycopg.Cursor[tuple[Any, ...]]

EVENT_COLUMNS = "job_id, run_id, kind, message, runner_id, data, created_at"


def _events(
    cur: Cursor,
    job: int,
    rows: list[tuple[int | None, str, str]],
    owner: str | None,
    now: datetime,
) -> None:
    with cur.copy(f"COPY job_events ({EVENT_COLUMNS}) FROM STDIN") as copy:
        for run_id, kind, message in rows:
            copy.write_row((job, run_id, kind, message, owner, Jsonb({}), now))


def _clock(cur: Cursor) -> datetime:
    """The database's clock, once per transaction (as the runner asks it)."""
    cur.execute("SELECT statement_timestamp()")
    row = cur.fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def drive(url: str, batch: int) -> int:
    """Wait for a job with queued runs and run every run of it to success; the
    number of runs driven. ``url`` may name SQLAlchemy's driver (``+psycopg``)."""
    url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    owner = f"raw-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    driven = 0
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        job = _wait_for_job(cur)
        cur.execute("SELECT id, host FROM job_hosts WHERE job_id = %s", (job,))
        lines = {host_id: json.dumps({"job": job, "host": host}) for host_id, host in cur}
        while True:
            with conn.transaction():
                claimed = _claim(cur, job, owner, batch)
            if not claimed:
                with conn.transaction():
                    if _finish_job_if_done(cur, job):
                        return driven
                continue
            with conn.transaction():
                _started(cur, job, owner, claimed)
            with conn.transaction():
                _succeeded(cur, job, owner, claimed, lines)
            driven += len(claimed)


def _wait_for_job(cur: Cursor) -> int:
    while True:
        cur.execute("SELECT job_id FROM runs WHERE status = 'QUEUED' LIMIT 1")
        found = cur.fetchone()
        if found is not None:
            return int(found[0])
        time.sleep(0.05)


def _claim(cur: Cursor, job: int, owner: str, batch: int) -> list[tuple[Any, ...]]:
    """Up to ``batch`` runs claimed: (id, epoch, job host id, step name) each."""
    cur.execute(CLAIM, {"job": job, "limit": batch, "owner": owner})
    claimed = cur.fetchall()
    if claimed:
        cur.execute(JOB_STARTED, {"job": job})
        if cur.fetchone() is not None:
            _events(cur, job, [(None, "job_started", "")], owner, _clock(cur))
    return claimed


def _started(cur: Cursor, job: int, owner: str, claimed: list[tuple[Any, ...]]) -> None:
    now = _clock(cur)
    ids, epochs = [r[0] for r in claimed], [r[1] for r in claimed]
    cur.execute(STARTED, {"ids": ids, "epochs": epochs, "owner": owner})
    assert len(cur.fetchall()) == len(ids)
    _events(cur, job, [(r[0], "run_started", r[3]) for r in claimed], owner, now)


def _succeeded(
    cur: Cursor, job: int, owner: str, claimed: list[tuple[Any, ...]], lines: dict[int, str]
) -> None:
    """The runs' log lines and outcomes; their hosts finished, as many started."""
    now = _clock(cur)
    texts = [lines.get(r[2], "") for r in claimed]
    with cur.copy("COPY run_logs (run_id, job_id, seq, ts, stream, line) FROM STDIN") as copy:
        for row, text in zip(claimed, texts, strict=True):
            copy.write_row((row[0], job, 1, now, "stdout", text))
    held = {
        "ids": [r[0] for r in claimed],
        "epochs": [r[1] for r in claimed],
        "bytes": [len(t.encode()) for t in texts],
        "owner": owner,
    }
    cur.execute(FINISHED, held)
    assert len(cur.fetchall()) == len(claimed)
    events = [(r[0], "run_succeeded", f"{r[3]}: ok") for r in claimed]
    cur.execute(HOSTS_DONE, {"hosts": [r[2] for r in claimed]})
    done = cur.fetchall()
    events += [(None, "host_succeeded", name) for _, name in done]
    cur.execute(HOSTS_STARTED, {"job": job, "free": len(done)})
    started = cur.fetchall()
    if started:
        events += [(None, "host_started", name) for _, name in started]
        cur.execute(RUNS_QUEUED, {"hosts": [h for h, _ in started]})
        events += [(run_id, "run_queued", step) for run_id, step in cur]
    _events(cur, job, events, owner, now)


def _finish_job_if_done(cur: Cursor, job: int) -> bool:
    """The job SUCCEEDED when no run is left; whether it was."""
    cur.execute(LEFT, {"job": job})
    row = cur.fetchone()
    assert row is not None
    if row[0]:
        return False
    cur.execute("SELECT count(*) FROM job_hosts WHERE job_id = %s", (job,))
    hosts = cur.fetchone()
    assert hosts is not None
    cur.execute(JOB_DONE, {"job": job, "message": f"{hosts[0]} succeeded"})
    _events(cur, job, [(None, "job_finished", "SUCCEEDED")], None, _clock(cur))
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database_url")
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    drive(args.database_url, args.batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
