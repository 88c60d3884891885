"""What a runner records of the runs it holds: their log lines and their outcomes.

A run's container writes lines, then exits; the runner records the lines in
batches (:func:`append_logs`) and the exit with the last of them
(:func:`finish_run`). A finished run moves its job's graph on
(:func:`settle_finished`, :mod:`craton_wf.engine.scheduling`). Every write
names the run's lease owner and epoch and is refused when the lease was lost
(:mod:`craton_wf.engine.leases`), so batching many runs' writes in one
transaction (:mod:`craton_wf.runner.recorder`) changes nothing about fencing.

Lines come one by one (:class:`LogRecord`) or in blocks (:class:`LineBlock`:
consecutive lines of one stream, as a container's output is read) and are
stored block by block (:mod:`craton_wf.domain.loglines`), inserted with the
transaction's commit (:mod:`craton_wf.engine._log_lines`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from craton_wf.db.bulk import one_of
from craton_wf.db.models import Job, Run
from craton_wf.domain.loglines import (
    LineBlock,
    cut_lines,
    lines_within,
    published_outputs,
    redacted_lines,
    stored_line,
    text_bytes,
)
from craton_wf.domain.logmarks import is_gap_marker, log_cap_marker
from craton_wf.domain.outputs import TEMPORARY_FAILURE_EXIT_CODE
from craton_wf.domain.redaction import redaction_needles
from craton_wf.domain.states import FINAL_RUN_STATES, JobStatus, RunStatus
from craton_wf.engine import scheduling
from craton_wf.engine._log_lines import LineSegment, insert_lines_later
from craton_wf.engine._staged import stage
from craton_wf.engine.events import record_event
from craton_wf.engine.leases import check_lease, db_now, lock_row
from craton_wf.engine.task_env import revoke_run_tokens
from craton_wf.engine.writes import in_a_batch


@dataclass(frozen=True)
class LogRecord:
    stream: str
    ts: datetime
    text: str


@dataclass(frozen=True)
class LogBatch:
    """Log lines to store (:func:`append_logs`, or with the outcome: :func:`finish_run`).

    They are stored as ``first_seq``, ``first_seq + 1``…; ``redact_values`` are
    the run's secret values, and a run stores at most ``max_run_bytes``.
    """

    lines: Sequence[LogRecord | LineBlock]  # lines one by one, or blocks of them
    first_seq: int
    max_line_bytes: int
    redact_values: tuple[str, ...] = ()
    max_run_bytes: int | None = None
    # Renew the run's lease by this much (append_logs): a run whose lines are
    # being written is alive, and its row, locked by one batch after another,
    # is what a heartbeat skips (leases.renew_leases).
    lease_seconds: float | None = None

    def blocks_after(self, stored_seq: int) -> list[LineBlock]:
        """The batch's lines in blocks, consecutive lines of one stream and stamp
        together, without those numbered ``stored_seq`` or less (stored by an
        earlier try of this batch)."""
        blocks: list[LineBlock] = []
        for item in self.lines:
            stream, ts = item.stream, item.ts
            lines = item.lines if isinstance(item, LineBlock) else [item.text]
            if blocks and blocks[-1].stream == stream and blocks[-1].ts == ts:
                blocks[-1].lines.extend(lines)  # one stamp and stream: one block
            else:
                blocks.append(LineBlock(stream, ts, list(lines)))
        skip = stored_seq - self.first_seq + 1
        while skip > 0 and blocks:
            first = blocks[0]
            if len(first.lines) > skip:
                blocks[0] = LineBlock(first.stream, first.ts, first.lines[skip:], first.live)
                break
            skip -= len(first.lines)
            blocks.pop(0)
        return blocks

    @property
    def line_count(self) -> int:
        return sum(len(item.lines) if isinstance(item, LineBlock) else 1 for item in self.lines)


@dataclass(frozen=True)
class LogAppend:
    """What :func:`append_logs` did: the next sequence number, and whether the run's log is full."""

    next_seq: int
    capped: bool = False


def stored_form(text: str, redact_values: tuple[str, ...], max_line_bytes: int) -> str:
    """A line of output as :func:`append_logs` stores it: redacted, cut to the limit."""
    return stored_line(text, redact_values, max_line_bytes)


def load_jobs(session: Session, job_ids: set[int]) -> None:
    """Load these jobs into the session with one query; later ``session.get``
    calls find them there (a runner's sessions hold what they load: db.engine)."""
    if job_ids:
        session.execute(select(Job).where(one_of(session, Job.id, sorted(job_ids)))).scalars().all()


@in_a_batch
def append_logs(session: Session, run_id: int, owner: str, epoch: int, logs: LogBatch) -> LogAppend:
    """Store the batch's lines; returns the next sequence number.

    Stored lines (and the outputs parsed from them) carry ``[redacted]`` in
    place of the run's secret values and of any API token.

    A run stores at most ``max_run_bytes`` of output: the line that would go
    past it is replaced by a visible ``system`` marker, and later lines are
    dropped (``capped`` tells the runner it may stop sending them).

    Idempotent: lines whose sequence numbers are already stored (a retried batch
    whose first commit did reach the database) are skipped, not stored twice.

    With ``lease_seconds`` the run's lease is renewed, as a heartbeat renews it:
    a heartbeat skips rows other transactions hold, and a run printing as fast
    as it can has its row held by one batch of lines after another.
    """
    run = check_lease(session, Run, run_id, owner, epoch)
    if logs.lease_seconds is not None:
        expires = db_now(session) + timedelta(seconds=logs.lease_seconds)
        stage(session, run, lease_expires_at=expires)
    return _append(session, run, logs)


def _append(session: Session, run: Run, logs: LogBatch) -> LogAppend:
    max_run_bytes = logs.max_run_bytes
    needles = redaction_needles(logs.redact_values)  # API tokens are redacted even with none
    outputs = dict(run.outputs or {})
    seq = run.log_seq
    stored_bytes = run.log_bytes or 0
    capped = max_run_bytes is not None and stored_bytes >= max_run_bytes
    gaps = 0
    for block in logs.blocks_after(run.log_seq):
        if capped:
            break
        redacted = redacted_lines(block.lines, needles)
        lines = cut_lines(redacted, logs.max_line_bytes)
        size = text_bytes(lines)
        if max_run_bytes is not None and stored_bytes + size > max_run_bytes:
            # Full: the line that would go past becomes the marker, and nothing
            # more goes in.
            kept = lines_within(lines, max_run_bytes - stored_bytes)
            redacted, lines, capped = redacted[:kept], lines[:kept], True
        insert_lines_later(
            session, LineSegment(run.id, run.job_id, seq + 1, block.ts, block.stream, lines)
        )
        seq += len(lines)
        if block.stream == "system":
            gaps += sum(is_gap_marker(block.stream, line) for line in lines)
        elif block.stream == "stdout":
            outputs.update(published_outputs(redacted))
        if capped:
            assert max_run_bytes is not None
            seq += 1
            marker = [log_cap_marker(max_run_bytes)]
            insert_lines_later(
                session, LineSegment(run.id, run.job_id, seq, block.ts, "system", marker)
            )
            stored_bytes = max_run_bytes
        else:
            stored_bytes += size
    _count_stored(session, seq - run.log_seq, stored_bytes - (run.log_bytes or 0))
    flags = _completeness(session, run, gaps, capped, max_run_bytes)
    if outputs != run.outputs:
        stage(session, run, log_seq=seq, log_bytes=stored_bytes, outputs=outputs, **flags)
    else:
        stage(session, run, log_seq=seq, log_bytes=stored_bytes, **flags)
    return LogAppend(next_seq=seq + 1, capped=capped)


@dataclass(frozen=True)
class StoredLog:
    """Log lines (and their bytes, as ``runs.log_bytes`` counts them) a transaction stored."""

    lines: int = 0
    bytes: int = 0


_STORED = "stored_log"


def _count_stored(session: Session, lines: int, size: int) -> None:
    stored = session.info.get(_STORED, StoredLog())
    session.info[_STORED] = StoredLog(stored.lines + lines, stored.bytes + size)


def take_stored_log(session: Session) -> StoredLog:
    """What this session's appends stored so far (and forget it): read by the
    caller that commits, which counts it once the commit succeeded."""
    return session.info.pop(_STORED, None) or StoredLog()


def _completeness(
    session: Session, run: Run, gaps: int, capped: bool, max_run_bytes: int | None
) -> dict[str, bool]:
    """The log flags this batch sets on the run, each told once to the job's events."""
    flags: dict[str, bool] = {}
    if gaps and not run.log_gap:
        flags["log_gap"] = True
        record_event(
            session,
            run.job_id,
            "run_log_gap",
            f"{run.step_name} attempt {run.attempt}: lines of its output are missing "
            "from its stored log, where a log gap line stands",
            run_id=run.id,
        )
    if capped and not run.log_capped:
        flags["log_capped"] = True
        record_event(
            session,
            run.job_id,
            "run_log_capped",
            f"{run.step_name} attempt {run.attempt}: its output reached the cap of "
            f"{max_run_bytes} bytes; the rest is not stored",
            run_id=run.id,
            max_bytes=max_run_bytes,
        )
    return flags


@in_a_batch
def finish_run(
    session: Session,
    run_id: int,
    owner: str,
    epoch: int,
    *,
    exit_code: int | None,
    error: str | None = None,
    timed_out: bool = False,
    cancelled: bool = False,
    lost: bool = False,
    settle: bool = True,
    last_lines: LogBatch | None = None,
) -> RunStatus:
    """Record the outcome of an attempt and let the engine move the job on.

    ``last_lines`` are the attempt's log lines not stored yet, stored first, in
    the same transaction (a short run's whole log and its outcome cost one write).

    A temporary failure (exit 75) or a lost container (gone before its exit code
    was read) is retried while the step has attempts left. ``settle=False``
    leaves the rest to one :func:`settle_finished` call, which moves on the
    jobs of many runs finished in one transaction, once each.
    """
    run = lock_row(session, Run, run_id)
    if run is not None and run.lease_epoch == epoch and run.lease_owner is None:
        return RunStatus(run.status)  # a retry of a finish that did commit
    run = check_lease(session, Run, run_id, owner, epoch, row=run)
    if last_lines is not None:
        _append(session, run, last_lines)
    session.info.setdefault("finished_runs", []).append(run)
    # Not locked: the job-wide part of scheduling locks it (settle_job); the
    # run's own part locks only the rows it changes.
    job = session.get(Job, run.job_id)
    assert job is not None
    now = db_now(session)
    # Past its stored deadline and not a success: a timeout, whoever stopped it
    # (a runner that adopts a container its dead owner's supervisor had stopped).
    timed_out = timed_out or (
        exit_code != 0 and run.deadline is not None and now >= run.deadline and not lost
    )
    if cancelled or job.status == JobStatus.CANCELLING.value:
        status = RunStatus.CANCELLED
        # Why: the job's cancel reason ("job timed out after 60s", "cancelled by request").
        error = error or job.message or "cancelled"
    elif timed_out:
        status = RunStatus.TIMED_OUT
        error = error or f"timed out after {run.timeout_seconds}s"
    elif exit_code == 0 and error is None:
        status = RunStatus.SUCCEEDED
    elif (lost or exit_code == TEMPORARY_FAILURE_EXIT_CODE) and run.attempt < run.max_attempts:
        status = RunStatus.QUEUED
        error = error or ("container lost" if lost else "temporary failure (exit 75)")
    else:
        status = RunStatus.FAILED
        error = error or f"exit code {exit_code}"
    outcome: dict[str, Any] = {
        "exit_code": exit_code,
        "error": error,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if status == RunStatus.QUEUED:
        delay = float(job.steps[run.step_index].get("retry_delay", 5.0))
        queued_at = now + timedelta(seconds=delay * run.attempt)
        scheduling.stage_run_status(
            session, run, status, queued_at=queued_at, finished_at=None, **outcome
        )
        record_event(
            session,
            job.id,
            "run_retrying",
            f"{run.step_name}: {error}; attempt {run.attempt + 1} in {delay * run.attempt:.0f}s",
            run_id=run.id,
            runner_id=owner,
        )
    else:
        scheduling.stage_run_status(session, run, status, finished_at=now, **outcome)
        record_event(
            session,
            job.id,
            f"run_{status.value.lower()}",
            f"{run.step_name}: {error or 'ok'}",
            run_id=run.id,
            runner_id=owner,
            exit_code=exit_code,
        )
    if settle:
        settle_finished(session)
    return status


@in_a_batch
def settle_finished(session: Session) -> None:
    """After :func:`finish_run` calls of this transaction: revoke the attempts'
    tokens, propagate the final runs through their jobs' graphs, and move each
    job on once.

    Rows are locked in one order everywhere: the runs (by the finishes), then
    their hosts (all jobs), then the jobs, by id.
    """
    runs: list[Run] = session.info.pop("finished_runs", [])
    if not runs:
        return
    revoke_run_tokens(session, [run.id for run in runs])  # CRATON_TOKEN dies with the attempt
    by_job: dict[int, list[Run]] = {}
    for run in runs:
        by_job.setdefault(run.job_id, [])
        if RunStatus(run.status) in FINAL_RUN_STATES:
            by_job[run.job_id].append(run)
    for job_id, finals in sorted(by_job.items()):
        if finals:
            job = session.get(Job, job_id)
            assert job is not None
            scheduling.after_runs_finished(session, job, finals)
    for job_id in sorted(by_job):
        scheduling.settle_job(session, scheduling.lock_job(session, job_id))
