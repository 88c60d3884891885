"""Driving one run's container from start to stored result.

Logs are read on a thread of their own (kept for the next run:
runner.threads) into a queue and written in batches (every quarter second or
20,000 lines), so a silent container does not hold back the lines it already
printed, and a chatty one does not cost a transaction per line; the lines
read when the log ends are stored with the outcome. Lines come in blocks as
the executor read them (:meth:`Executor.log_blocks`), not one object each, and
one batch is written while the next is gathered. The reader never waits on
the writer while the run's log can grow: past :data:`LINES_QUEUED` lines in
memory, blocks wait in a file (:mod:`craton_wf.runner.log_spool`), so the
attach is drained as fast as the container prints, and the runner's memory
stays bounded, however slow the database. A reader that fails leaves a gap
line at the end of the log, never a log that ends early without saying so. A run
taken over with lines stored already is read line by line, to find where
they end (:mod:`craton_wf.runner.resume`).

Between one step's container exiting and the next one starting, only what
the next one needs is done: the outcome is committed (which queues the next
step), the run's slot is given back (which wakes the claim), and only then is
the container removed, so removing it — as long as a container start — runs
beside the next claim and start instead of before them. The container is
still removed only after its logs and exit code are committed. A freshly
claimed attempt has a container name no container has yet, so it is created
without looking for one first; a name taken all the same (the attempt's
container made meanwhile) is found and adopted then.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from craton_wf.db.engine import retrying
from craton_wf.db.models import utcnow
from craton_wf.domain.labels import RUN_UID_LABEL
from craton_wf.domain.logmarks import log_gap_marker
from craton_wf.domain.states import RunStatus
from craton_wf.engine import claims, recording, task_env
from craton_wf.engine.claims import RunAssignment
from craton_wf.engine.recording import LogAppend, LogBatch, LogRecord
from craton_wf.errors import CratonError, ExecutorError, LeaseLost, NameTaken
from craton_wf.executors.base import ContainerSpec, ContainerState, Executor, Handle, LineBlock
from craton_wf.process_metrics import process_metrics
from craton_wf.runner.log_spool import SpillingQueue
from craton_wf.runner.resume import resume_lines
from craton_wf.runner.threads import Outcome, ReusedThreads
from craton_wf.settings import Settings

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25
FLUSH_LINES = 20_000
LINES_QUEUED = 20_000  # read ahead of what is stored, at most
_END = object()
_READERS = ReusedThreads("runner-logs")  # every run's log reader, threads kept for reuse


@dataclass
class ActiveRun:
    assignment: RunAssignment
    handle: Handle | None = None
    stop_reason: str | None = None
    stopped: threading.Event = field(default_factory=threading.Event)


class RunExecution:
    """Executes one claimed run; ``owner`` is the runner id that holds its lease."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        executor: Executor,
        owner: str,
        active: ActiveRun,
        on_finished: Callable[[], None] = lambda: None,
        abandoned: threading.Event | None = None,
        recorder: Any = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.executor = executor
        self.owner = owner
        self.active = active
        self.assignment = active.assignment
        self.next_seq = self.assignment.log_seq + 1
        self.on_finished = on_finished
        # Set when the runner stopped and handed this run over: write nothing more.
        self.abandoned = abandoned or threading.Event()
        # Batches this run's writes with other runs' (runner.recorder.Recorder).
        self.recorder = recorder
        # "started", queued to the recorder and maybe not committed yet.
        self.started: Outcome[Any] | None = None
        # Environment (secrets, CRATON_URL/TOKEN), limits and what to redact from logs.
        self.prepared = task_env.RunPreparation()
        # When this process started the attempt's container (monotonic); None when
        # it adopted one, whose start it did not see (craton_run_duration_seconds).
        self.container_started: float | None = None

    def _tx(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.abandoned.is_set():
            raise LeaseLost(f"run {self.assignment.run_id}: handed over when the runner stopped")
        if self.recorder is not None:
            result = self.recorder.record(fn, *args, **kwargs)
            self._check_started()
            return result
        return retrying(self.sessions, fn, *args, abort=self.abandoned, **kwargs)

    def _mark_started(self, handle: Handle) -> None:
        """Record that the container runs. With a recorder, the write is left to
        commit while the log is read: the run's next write is queued behind it."""
        args = (self.assignment.run_id, self.owner, self.assignment.epoch, handle.id)
        if self.recorder is None or self.abandoned.is_set():
            self._tx(claims.mark_started, *args)
        else:
            self.started = self.recorder.submit(claims.mark_started, *args)

    def _check_started(self, block: bool = False) -> None:
        """Raise what recording "started" raised, once it is known (a lost lease).

        Checked after each later write, which was recorded after it."""
        if self.started is None or not (block or self.started.done()):
            return
        started, self.started = self.started, None
        exc = started.exception()
        if isinstance(exc, LeaseLost):
            raise exc
        if exc is not None:
            log.warning("run %s: recording its start failed: %s", self.assignment.run_id, exc)

    def spec(self) -> ContainerSpec:
        return ContainerSpec(
            name=self.assignment.container_name,
            image=self.assignment.image,
            command=self.assignment.command,
            labels=self.assignment.labels,
            network=self.assignment.needs_network,
            env=self.prepared.env,
            limits=self.prepared.limits,
            timeout_seconds=self.assignment.timeout_seconds,
            placement=self.prepared.placement,
        )

    def run(self) -> None:
        finished: Handle | None = None
        try:
            finished = self._run()
        except LeaseLost as exc:
            log.warning("run %s: %s; leaving its container alone", self.assignment.run_id, exc)
        except Exception:  # a runner thread must never die silently
            log.exception("run %s failed in the runner", self.assignment.run_id)
            self._finish(exit_code=None, error="internal runner error; see the runner's log")
        finally:
            self.on_finished()
        if finished is not None and self.settings.remove_containers:
            self._remove(finished)

    def _remove(self, handle: Handle) -> None:
        try:
            self.executor.remove(handle)
        except ExecutorError as exc:
            log.warning("could not remove %s: %s", handle.name, exc)

    def _run(self) -> Handle | None:
        """Drive the container to its recorded outcome; the container, once its
        outcome is committed (to be removed), else None."""
        handle = self._container()
        if handle is None:
            return None
        self.active.handle = handle
        self._mark_started(handle)
        if self.settings.fault_point == "after_start":
            self._check_started(block=True)  # die with the start recorded
            self._fault("after_start")
        if self.active.stop_reason:  # cancelled while starting
            self.executor.stop(handle, grace_seconds=self.settings.stop_grace_seconds)
        last_lines = self._pump_logs(handle)
        exit_code = self._wait(handle)
        self._fault("before_finish")
        reason = self.active.stop_reason
        self._finish(
            exit_code=exit_code,
            error=None if exit_code is not None else "the container did not report an exit code",
            timed_out=reason in ("timeout", "job_timeout"),
            cancelled=reason == "cancel",
            last_lines=last_lines,
        )
        return handle

    def _wait(self, handle: Handle) -> int | None:
        """The exit code (the log ended, so the container is exiting); None after a minute."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.abandoned.is_set():
                raise LeaseLost(
                    f"run {self.assignment.run_id}: handed over when the runner stopped"
                )
            code = self.executor.wait(handle, timeout=1)
            if code is not None:
                return code
        return None

    def _container(self) -> Handle | None:
        """This attempt's one container: found (adopted) or created, and started.

        None when the run was finished here instead (container lost or refused).
        """
        try:
            fresh = self.assignment.adopted_from is None and not self.assignment.was_started
            handle = None if fresh else self.executor.find(self.assignment.container_name)
            if handle is not None and not self._is_ours(handle):
                return None
            if handle is None and self.assignment.was_started:
                # Started by a runner that died, and gone since: nothing to read back.
                self._finish(
                    exit_code=None,
                    lost=True,
                    error=f"container {self.assignment.container_name} was lost",
                )
                return None
            try:
                if (
                    handle is None and self.assignment.prepared is not None
                ):  # prepared with the claim
                    self.prepared = self.assignment.prepared
                else:
                    self.prepared = self._tx(
                        task_env.prepare_run,
                        self.assignment.run_id,
                        self.owner,
                        self.assignment.epoch,
                        self.settings,
                        issue=handle is None,  # an adopted container has its token already
                    )
            except LeaseLost:
                raise
            except CratonError as exc:
                self._finish(exit_code=None, error=f"could not prepare the run: {exc.message}")
                return None
            creating: float | None = None  # made here: its start is timed
            if handle is None:
                creating = time.monotonic()
                try:
                    handle = self.executor.create(self.spec())
                except NameTaken:
                    # Created meanwhile under this attempt's name: adopt it if it is ours.
                    handle = self.executor.find(self.assignment.container_name)
                    if handle is None:
                        self._finish(
                            exit_code=None,
                            lost=True,
                            error=(
                                f"container {self.assignment.container_name} "
                                "vanished as it was made"
                            ),
                        )
                        return None
                    if not self._is_ours(handle):
                        return None
                    log.info(
                        "run %s: adopting %s, made meanwhile", self.assignment.run_id, handle.name
                    )
                self._fault("after_create")
            if handle.state == ContainerState.CREATED:
                self.executor.start(handle)
                if creating is not None:
                    self.container_started = time.monotonic()
                    process_metrics().container_start.labels(self.executor.name).observe(
                        self.container_started - creating
                    )
            return handle
        except ExecutorError as exc:
            self._finish(exit_code=None, error=f"could not start the container: {exc.message}")
            return None

    def _is_ours(self, handle: Handle) -> bool:
        """Whether a container found under this attempt's name is this run's (by label).

        A stranger with our name is never touched; the run fails, saying so.
        """
        if handle.labels.get(RUN_UID_LABEL) == self.assignment.labels.get(RUN_UID_LABEL):
            return True
        self._finish(
            exit_code=None,
            error=f"a container named {handle.name} exists that is not this run's",
        )
        return False

    def _fault(self, point: str) -> None:
        """Test hook: die here, as a SIGKILL would, when the settings name this point."""
        if self.settings.fault_point == point:
            os.kill(os.getpid(), signal.SIGKILL)

    def _finish(self, **outcome: Any) -> None:
        status = self._tx(
            recording.finish_run,
            self.assignment.run_id,
            self.owner,
            self.assignment.epoch,
            **outcome,
        )
        if self.container_started is not None:
            outcome_label = "RETRIED" if status == RunStatus.QUEUED else str(status)
            process_metrics().run_duration.labels(outcome_label).observe(
                time.monotonic() - self.container_started
            )

    def _pump_logs(self, handle: Handle) -> LogBatch | None:
        """Store the container's log as it comes, to its end.

        The lines read since the last flush when the log ends are returned, not
        stored: they go with the run's outcome, in one write.
        """
        # Never full while the run's log can grow: the attach is drained at once.
        lines: SpillingQueue[Any] = SpillingQueue(LINES_QUEUED, self.settings.run_log_max_bytes)
        since = self.assignment.last_log_ts

        def stored_form(text: str) -> str:
            return recording.stored_form(
                text, self.prepared.redact, self.settings.log_line_max_bytes
            )

        def read() -> None:
            # Everything the runtime still has: where the stored lines end is
            # found by counting them (runner.resume), not by stamps.
            stream: Any
            if self.assignment.stored:
                stream = self.executor.logs(handle)
                items: Iterator[LogRecord | LineBlock] = resume_lines(
                    stream, self.assignment.stored, stored_form, since
                )
            else:
                stream = items = self.executor.log_blocks(handle)
            try:
                for item in items:
                    if not lines.put(item, _line_count(item)):
                        return  # the writer is gone
            except Exception as exc:  # the rest of the output cannot be read: say so in the log
                if isinstance(exc, CratonError):
                    lines.put(exc)
                else:
                    log.exception("run %s: reading its log failed", self.assignment.run_id)
                lines.put(LogRecord("system", utcnow(), log_gap_marker(utcnow(), None)), 1)
            finally:
                # Closed now, not when collected: an attach left open holds the
                # container back once its pipe is full.
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
                lines.put(_END)

        if self.assignment.adopted_from:
            previous = self.assignment.adopted_from
            note = f"[craton] runner {self.owner} took this run over from {previous}"
            note += f"; log resumes after {since.isoformat()}" if since else "; no log stored yet"
            lines.put(LogRecord("system", utcnow(), note), 1)
        reader = _READERS.submit(read)
        try:
            batch = self._store_lines(lines)
        finally:
            lines.close()
        reader.wait(timeout=5)
        return self._log_batch(batch) if batch else None

    def _store_lines(self, lines: SpillingQueue[Any]) -> list[LogRecord | LineBlock]:
        """Store the lines that come through ``lines``, a batch every quarter
        second or :data:`FLUSH_LINES` lines, to the log's end; the lines not yet
        stored then. A batch is written while the next is gathered."""
        batch: list[LogRecord | LineBlock] = []
        batch_lines = 0
        writing: Outcome[LogAppend] | None = None  # the batch being written
        last_flush = time.monotonic()
        done = False
        # The run's log is full: read on to the end, store nothing, so the
        # container is never held back by a reader that stopped (an attach).
        capped = False
        while not done:
            try:
                item = lines.get(timeout=FLUSH_SECONDS)
            except queue.Empty:
                item = None
            if self.abandoned.is_set():
                raise LeaseLost(
                    f"run {self.assignment.run_id}: handed over when the runner stopped"
                )
            if item is _END:
                done = True
            elif isinstance(item, CratonError):
                log.warning("run %s: log stream broke: %s", self.assignment.run_id, item)
            elif item is not None and not capped:
                batch.append(item)
                batch_lines += _line_count(item)
            now = time.monotonic()
            if (
                batch
                and not done
                and (batch_lines >= FLUSH_LINES or now - last_flush >= FLUSH_SECONDS)
            ):
                capped = self._written(writing) or capped
                writing = None if capped else self._write(batch)
                self.next_seq += batch_lines
                batch, batch_lines = [], 0
                last_flush = now
        capped = self._written(writing) or capped
        return [] if capped else batch

    def _write(self, batch: list[LogRecord | LineBlock]) -> Outcome[LogAppend]:
        """Start writing ``batch`` (numbered from ``next_seq``); its outcome."""
        logs = replace(self._log_batch(batch), lease_seconds=self.settings.lease_seconds)
        args = (self.assignment.run_id, self.owner, self.assignment.epoch, logs)
        if self.recorder is not None:
            return self.recorder.submit(recording.append_logs, *args)
        written: Outcome[LogAppend] = Outcome()
        written.set_result(self._tx(recording.append_logs, *args))
        return written

    def _written(self, writing: Outcome[LogAppend] | None) -> bool:
        """Wait for the batch being written; whether the run's log is full now."""
        if writing is None:
            return False
        appended = writing.result()  # raises what writing raised (a lost lease)
        self._check_started()
        self._fault("mid_logs")
        return appended.capped

    def _log_batch(self, lines: list[LogRecord | LineBlock]) -> LogBatch:
        """``lines``, to be stored after those stored so far."""
        return LogBatch(
            lines,
            first_seq=self.next_seq,
            max_line_bytes=self.settings.log_line_max_bytes,
            redact_values=self.prepared.redact,
            max_run_bytes=self.settings.run_log_max_bytes,
        )


def _line_count(item: Any) -> int:
    """How many lines a queued item holds (a block, a record, or an end)."""
    if isinstance(item, LineBlock):
        return len(item.lines)
    return 1 if isinstance(item, LogRecord) else 0
