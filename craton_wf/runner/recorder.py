"""Recording what runs do in batches: one transaction for the writes of many runs.

Every run of a runner writes twice or more (started; log lines while it
runs; its outcome, with the last lines), and a finished run also moves its
job's graph on. Done in one transaction each, the writes of a busy runner
cost a commit and a connection checkout apiece and queue up on shared rows.
Here one thread takes whatever writes are waiting, from every run, and
records them together:

- each write is an engine call ``fn(session, run_id, owner, epoch, ...)``
  that checks the run's lease itself, so batching changes nothing about fencing;
- what the writes store is held and written together at the end of the
  batch, before its commit (:func:`craton_wf.engine.writes.batched_writes`):
  one insert for all the runs' log lines, one for their events, one update
  for their rows;
- writes are recorded in the order they were queued, so the writes of one run
  stay in order; a run's thread waits for a write to be committed before it
  goes on, except for "started", which it leaves to commit while it reads the
  container's log (its next write is queued behind it);
- finished runs are recorded with ``settle=False`` and their jobs are moved on
  once per batch (``recording.settle_finished``);
- the batch's runs are locked first, with one query in id order, so two
  runners' batches lock rows in the same order (runs, then hosts, then jobs);
- if any write of a batch fails, the batch is rolled back and each write is
  recorded on its own, so one bad write (a lost lease) cannot hold back the
  others;
- the log lines a transaction stored are counted (``craton_log_lines_stored_total``)
  once it committed, so a rolled-back or retried batch is never counted twice.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from craton_wf.db.engine import retrying
from craton_wf.db.models import Run
from craton_wf.engine import recording
from craton_wf.engine.leases import lock_rows
from craton_wf.engine.writes import batched_writes
from craton_wf.process_metrics import process_metrics
from craton_wf.runner.threads import Outcome

log = logging.getLogger(__name__)

BATCH = 256  # writes recorded in one transaction, at most


@dataclass
class _Write:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    done: Outcome[Any] = field(default_factory=Outcome)

    @property
    def run_id(self) -> int:
        return int(self.args[0])

    @property
    def finishes(self) -> bool:
        return self.fn is recording.finish_run


class Recorder:
    def __init__(self, sessions: sessionmaker[Session], abandoned: threading.Event) -> None:
        self.sessions = sessions
        self.abandoned = abandoned
        self._queue: queue.Queue[_Write] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="runner-recorder", daemon=True)
        self._thread.start()

    def submit(
        self, fn: Callable[..., Any], run_id: int, *args: Any, **kwargs: Any
    ) -> Outcome[Any]:
        """Queue ``fn(session, run_id, *args, **kwargs)``, to be batched with other
        runs' writes; the outcome holds its result once committed.

        Writes are recorded in the order they were queued, so a run's later
        write never lands before an earlier one.
        """
        write = _Write(fn, (run_id, *args), kwargs)
        self._queue.put(write)
        return write.done

    def record(self, fn: Callable[..., Any], run_id: int, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`submit`, waiting: the result once committed, or what it raised."""
        return self.submit(fn, run_id, *args, **kwargs).result()

    def finish(self, run_id: int, owner: str, epoch: int, **outcome: Any) -> Any:
        """Record a run's outcome (as ``recording.finish_run``)."""
        return self.record(recording.finish_run, run_id, owner, epoch, **outcome)

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._record(batch)

    def _record(self, batch: list[_Write]) -> None:
        if len(batch) > 1:
            try:
                results, stored = retrying(self.sessions, _apply_all, batch, abort=self.abandoned)
            except Exception:  # one of them failed: record each on its own below
                log.debug("batched writes failed; recording them one by one", exc_info=True)
            else:
                _count(stored)
                for write, result in zip(batch, results, strict=True):
                    write.done.set_result(result)
                return
        for write in batch:
            try:
                result, stored = retrying(self.sessions, _apply_one, write, abort=self.abandoned)
            except Exception as exc:
                write.done.set_exception(exc)
            else:
                _count(stored)
                write.done.set_result(result)


def _count(stored: recording.StoredLog) -> None:
    metrics = process_metrics()
    metrics.log_lines.inc(stored.lines)
    metrics.log_bytes.inc(stored.bytes)


def _apply_one(session: Session, write: _Write) -> tuple[Any, recording.StoredLog]:
    result = write.fn(session, *write.args, **write.kwargs)
    return result, recording.take_stored_log(session)


def _apply_all(session: Session, batch: list[_Write]) -> tuple[list[Any], recording.StoredLog]:
    """Apply every write of the batch, then move the finished runs' jobs on once
    each; what they store is written at the end of the batch, before the commit.
    Also what log lines they stored.

    The batch's runs are locked first, with one query, in id order; each
    write's own lease check then finds its run locked already.
    """
    results: dict[int, Any] = {}
    with batched_writes(session):
        runs = lock_rows(session, Run, [write.run_id for write in batch])
        # The jobs the outcomes read, loaded now with one query: loading them
        # between the writes would also write what the writes before had staged.
        recording.load_jobs(
            session, {runs[w.run_id].job_id for w in batch if w.finishes and w.run_id in runs}
        )
        order = sorted(range(len(batch)), key=lambda i: batch[i].run_id)  # stable: run order
        for index in order:
            write = batch[index]
            if write.finishes:
                results[index] = write.fn(session, *write.args, settle=False, **write.kwargs)
            else:
                results[index] = write.fn(session, *write.args, **write.kwargs)
        recording.settle_finished(session)
    return [results[index] for index in range(len(batch))], recording.take_stored_log(session)
