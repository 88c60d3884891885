"""Finishing runs in batches: one transaction, one job-row lock, for many results.

Every finished run locks its job's row to move the job's graph on. Done one
transaction per run, a runner's threads queue up on that lock; here one thread
takes whatever results are waiting and records them together. If any of them
fails, the batch is rolled back and each is recorded on its own, so one bad
result cannot hold back the others.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from craton_wf.db.engine import retrying
from craton_wf.services import runs as run_service

log = logging.getLogger(__name__)

BATCH = 64


class Finisher:
    def __init__(self, sessions: sessionmaker[Session], abandoned: threading.Event) -> None:
        self.sessions = sessions
        self.abandoned = abandoned
        self._queue: queue.Queue[tuple[tuple[Any, ...], dict[str, Any], Future[Any]]] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._loop, name="runner-finisher", daemon=True)
        self._thread.start()

    def finish(self, run_id: int, owner: str, epoch: int, **outcome: Any) -> Any:
        """Record a run's outcome (as ``finish_run``), batched with others; waits for it."""
        done: Future[Any] = Future()
        self._queue.put(((run_id, owner, epoch), outcome, done))
        return done.result()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._record(batch)

    def _record(self, batch: list[tuple[tuple[Any, ...], dict[str, Any], Future[Any]]]) -> None:
        if len(batch) > 1:
            try:
                results = retrying(self.sessions, _finish_all, batch, abort=self.abandoned)
            except Exception:  # one of them failed: record each on its own below
                log.debug("batched finish failed; finishing one by one", exc_info=True)
            else:
                for (_, _, done), result in zip(batch, results, strict=True):
                    done.set_result(result)
                return
        for args, outcome, done in batch:
            try:
                done.set_result(
                    retrying(
                        self.sessions,
                        run_service.finish_run,
                        *args,
                        abort=self.abandoned,
                        **outcome,
                    )
                )
            except Exception as exc:
                done.set_exception(exc)


def _finish_all(
    session: Session, batch: list[tuple[tuple[Any, ...], dict[str, Any], Future[Any]]]
) -> list[Any]:
    """Finish every run of the batch, then move each of their jobs on once.

    Runs are taken in id order, so two runners' batches lock rows in the same
    order and cannot deadlock.
    """
    results: dict[int, Any] = {}
    for index in sorted(range(len(batch)), key=lambda i: batch[i][0][0]):
        args, outcome, _ = batch[index]
        results[index] = run_service.finish_run(session, *args, settle=False, **outcome)
    run_service.settle_jobs(session, [args[0] for args, _, _ in batch])
    return [results[index] for index in range(len(batch))]
