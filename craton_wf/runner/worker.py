"""A runner process: claims work, executes it on worker threads, keeps leases alive.

Four kinds of threads:
- the dispatcher claims builds and runs while slots are free and sleeps on a
  wake-up event otherwise (the embedded server sets it when work arrives);
- worker threads execute one build or run each;
- the supervisor renews leases and the runner's heartbeat, and stops
  containers whose job was cancelled or whose deadline passed;
- the webhook sender POSTs due webhook deliveries (runner.webhook_sender).

With ``remove_containers``, a runner also sweeps (runner.sweeper) at its start
and every ``sweep_seconds``: it removes the containers that stopped runners
left behind. A sweep runs on a thread of its own, so neither the start nor
the heartbeats wait for it, and one sweep at a time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from craton_wf.db.engine import reading, transaction
from craton_wf.db.models import Build, Run, utcnow
from craton_wf.engine import builds as build_service
from craton_wf.engine import claims, scheduling
from craton_wf.engine.leases import expire_leases, renew_leases
from craton_wf.engine.runners import record_heartbeat, record_stop, register_runner
from craton_wf.engine.waves import due_wave_jobs
from craton_wf.errors import CratonError
from craton_wf.executors.base import Executor
from craton_wf.process_metrics import process_metrics
from craton_wf.runner.execution import ActiveRun, RunExecution
from craton_wf.runner.recorder import Recorder
from craton_wf.runner.sweeper import sweep_containers
from craton_wf.runner.webhook_sender import WebhookSender
from craton_wf.settings import Settings

log = logging.getLogger(__name__)

CLAIM_BATCH = 64  # runs claimed in one transaction
SCHEDULE_POLL_SECONDS = 2.0  # how often a runner fires the schedules that are due
GATHER_SECONDS = 0.1  # how long a claim for a few free slots waits for more


def new_runner_id() -> str:
    return f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Runner:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        executor: Executor,
        builder: Any = None,
        *,
        name: str | None = None,
        wakeup: threading.Event | None = None,
        fire_schedules: Callable[[], object] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self._reads = reading(sessions)
        self.executor = executor
        self.builder = builder
        self.id = new_runner_id()
        self.name = name or self.id
        self.wakeup = wakeup or threading.Event()
        self._stop = threading.Event()
        self._slot_freed = threading.Event()
        self._abandoned = threading.Event()
        self._recorder: Recorder | None = None
        self._lock = threading.Lock()
        self._runs: dict[int, ActiveRun] = {}
        self._builds: set[int] = set()
        self._pool = ThreadPoolExecutor(
            max_workers=settings.runner_slots + settings.build_slots,
            thread_name_prefix="runner-work",
        )
        self._threads: list[threading.Thread] = []
        self._sweeping = threading.Lock()
        self._fire_schedules = fire_schedules  # engine.schedule_firing, its launch bound

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self._register()
        if self._sweeps:
            self._sweep_in_background()
        self._recorder = Recorder(self.sessions, self._abandoned)
        sender = WebhookSender(self.settings, self.sessions, self.id)
        for target, name in (
            (self._dispatch, "runner-dispatch"),
            (self._supervise, "runner-supervise"),
            (lambda: sender.run_until(self._stop), "runner-webhooks"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("runner %s started (executor %s)", self.id, self.executor.name)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop claiming; let running work finish for up to ``timeout`` seconds.

        Work still running then is handed over: its leases are expired at once, so
        another runner adopts the containers (which keep running) instead of
        waiting for the leases to run out. Returns True when nothing was left.
        """
        self._stop.set()
        self.wakeup.set()
        for thread in self._threads:
            thread.join(timeout=timeout)
        deadline = time.monotonic() + timeout
        while (self.active_runs or self._builds) and time.monotonic() < deadline:
            time.sleep(0.1)
        with self._lock:
            left_runs, left_builds = list(self._runs), list(self._builds)
        if left_runs:
            self._abandoned.set()
        self._pool.shutdown(wait=not (left_runs or left_builds), cancel_futures=True)
        try:
            with transaction(self.sessions) as session:
                expire_leases(session, Run, self.id, left_runs)
                expire_leases(session, Build, self.id, left_builds)
                record_stop(session, self.id)
        except Exception:  # stopping must not fail on a database outage
            log.exception("could not record the runner's stop")
        if left_runs or left_builds:
            log.warning(
                "runner %s handed over %d run(s) and %d build(s) still in progress",
                self.id,
                len(left_runs),
                len(left_builds),
            )
        return not (left_runs or left_builds)

    def run_forever(self) -> bool:
        self.start()
        try:
            self._stop.wait()
        finally:
            clean = self.stop(timeout=self.settings.shutdown_grace_seconds)
        return clean

    def request_stop(self) -> None:
        self._stop.set()
        self.wakeup.set()

    @property
    def active_runs(self) -> int:
        with self._lock:
            return len(self._runs)

    # --- dispatch -----------------------------------------------------------------

    def _dispatch(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self._claim_work()
            except Exception:
                log.exception("claiming work failed; retrying")
                claimed = False
                self._stop.wait(self.settings.runner_poll_seconds)
            if not claimed:
                self.wakeup.wait(self.settings.runner_poll_seconds)
                self.wakeup.clear()

    def _claim_work(self) -> bool:
        claimed = False
        if self.builder is not None and len(self._builds) < self.settings.build_slots:
            with transaction(self.sessions) as session:
                build = build_service.claim_next_build(
                    session, self.id, self.settings.lease_seconds
                )
            if build is not None:
                with self._lock:
                    self._builds.add(build.build_id)
                self._pool.submit(self._execute_build, build)
                claimed = True
        gather_until: float | None = None
        while not self._stop.is_set():
            free = min(self.settings.runner_slots - self.active_runs, CLAIM_BATCH)
            if free <= 0:
                break
            if free < min(CLAIM_BATCH, self.settings.runner_slots // 4):
                # A few slots free while many runs are in flight: let more of them
                # finish, for up to GATHER_SECONDS, and claim for all at once (a
                # claim costs about as much for one run as for dozens).
                now = time.monotonic()
                gather_until = gather_until or now + GATHER_SECONDS
                if now < gather_until:
                    self._slot_freed.wait(gather_until - now)
                    self._slot_freed.clear()
                    continue
            with transaction(self.sessions) as session:
                assignments = claims.claim_runs(
                    session, self.id, self.settings.lease_seconds, free, self.settings
                )
            takeovers = sum(1 for a in assignments if a.adopted_from is not None)
            if takeovers:
                process_metrics().lease_takeovers.inc(takeovers)
            for assignment in assignments:
                active = ActiveRun(assignment)
                with self._lock:
                    self._runs[assignment.run_id] = active
                self._pool.submit(self._execute_run, active)
            claimed = claimed or bool(assignments)
            if len(assignments) < free:
                break
        return claimed

    def _execute_run(self, active: ActiveRun) -> None:
        def finished() -> None:
            with self._lock:
                self._runs.pop(active.assignment.run_id, None)
            self._slot_freed.set()
            self.wakeup.set()  # the finished run may have unblocked the next one

        RunExecution(
            self.settings,
            self.sessions,
            self.executor,
            self.id,
            active,
            on_finished=finished,
            abandoned=self._abandoned,
            recorder=self._recorder,
        ).run()

    def _execute_build(self, build: build_service.BuildAssignment) -> None:
        from craton_wf.runner.build_execution import BuildExecution

        try:
            BuildExecution(self.settings, self.sessions, self.builder, self.id, build).run()
        finally:
            with self._lock:
                self._builds.discard(build.build_id)
            self.wakeup.set()

    # --- supervision --------------------------------------------------------------

    def _supervise(self) -> None:
        last_heartbeat = 0.0
        last_sweep = time.monotonic()  # start() made the first sweep
        last_schedules = 0.0
        interval = min(0.5, self.settings.heartbeat_seconds)
        while not self._stop.wait(interval):
            try:
                self._stop_what_must_stop()
                self._start_due_waves()
                now = time.monotonic()
                if now - last_heartbeat >= self.settings.heartbeat_seconds:
                    self._heartbeat()
                    last_heartbeat = now
                if self._fire_schedules and now - last_schedules >= SCHEDULE_POLL_SECONDS:
                    if self._fire_schedules():
                        self.wakeup.set()  # new jobs' first runs: claim them at once
                    last_schedules = now
                if self._sweeps and now - last_sweep >= self.settings.sweep_seconds:
                    self._sweep_in_background()
                    last_sweep = now
            except Exception:
                log.exception("supervision failed; retrying")

    def _stop_what_must_stop(self) -> None:
        with self._lock:
            active = dict(self._runs)
        if not active:
            return
        with transaction(self.sessions) as session:
            verdicts = claims.runs_to_stop(session, self.id, list(active))
            for run_id, reason in verdicts.items():
                if reason == "job_timeout" and active[run_id].stop_reason is None:
                    job = scheduling.lock_job(session, active[run_id].assignment.job_id)
                    scheduling.cancel_job(
                        session, job, f"job timed out after {job.timeout_seconds}s"
                    )
        for run_id, reason in verdicts.items():
            run = active[run_id]
            if run.stop_reason is not None:
                continue
            run.stop_reason = reason
            if run.handle is not None:
                threading.Thread(target=self._stop_container, args=(run,), daemon=True).start()

    def _start_due_waves(self) -> None:
        """Start the rollout waves whose pause is over (any runner may; the job lock
        makes it once), and claim their runs at once. Asked first in a read-only
        transaction: twice a second, it must not take SQLite's write lock."""
        with transaction(self._reads) as session:
            if not due_wave_jobs(session, utcnow(), limit=1):
                return
        with transaction(self.sessions) as session:
            started = scheduling.start_due_waves(session)
        if started:
            self.wakeup.set()

    def _stop_container(self, run: ActiveRun) -> None:
        try:
            assert run.handle is not None
            self.executor.stop(run.handle, grace_seconds=self.settings.stop_grace_seconds)
        except CratonError as exc:
            log.warning("could not stop %s: %s", run.assignment.container_name, exc)

    def _heartbeat(self) -> None:
        with self._lock:
            run_ids, build_ids = list(self._runs), list(self._builds)
        with transaction(self.sessions) as session:
            renew_leases(session, Run, self.id, run_ids, self.settings.lease_seconds)
            renew_leases(session, Build, self.id, build_ids, self.settings.lease_seconds)
            record_heartbeat(session, self.id)

    # --- sweeping ---------------------------------------------------------------------

    @property
    def _sweeps(self) -> bool:
        return self.settings.remove_containers and self.settings.sweep_seconds > 0

    def _sweep_in_background(self) -> None:
        threading.Thread(target=self._sweep, name="runner-sweep", daemon=True).start()

    def _sweep(self) -> None:
        """Remove containers left behind by stopped runners; a failure waits for the next."""
        if not self._sweeping.acquire(blocking=False):
            return  # the last sweep is still at it
        try:
            removed = sweep_containers(self.sessions, self.executor, self._stop)
            process_metrics().sweeps.inc()
            process_metrics().swept_containers.inc(len(removed))
            log.log(
                logging.INFO if removed else logging.DEBUG,
                "runner %s removed %d container(s) left behind",
                self.id,
                len(removed),
            )
        except Exception:
            log.exception("sweeping containers left behind failed; trying again later")
        finally:
            self._sweeping.release()

    def _register(self) -> None:
        with transaction(self.sessions) as session:
            register_runner(session, self.id, self.name, self.executor.name)
