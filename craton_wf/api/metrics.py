"""``GET /metrics``: the fleet's figures and this server's, in Prometheus' text format.

One scrape answers with two kinds of figures (docs/metrics.md):

- the fleet's, read from the database at scrape time by :class:`FleetCollector`
  (:mod:`craton_wf.services.fleet`): jobs and runs by state, approvals
  pending, runner heartbeats. They are the same whichever API process is
  asked, so scrape one API replica (or the Service), not every pod, or sum
  with ``max`` rather than ``sum``. The queries are cached
  ``metrics_cache_seconds`` per process, so a storm of scrapes costs one
  query each few seconds; a database that does not answer leaves them out
  and says so (``craton_fleet_up 0``) instead of failing the scrape;
- this server's process figures (:mod:`craton_wf.process_metrics`): HTTP
  requests by route template (``/v1/jobs/{job_id}``, never the raw path, so
  their number stays bounded) and status, and, with the embedded runner, what
  it observed. With ``serve --workers N`` they are added up over every worker
  and the runner's process (prometheus-client's multiprocess files), whichever
  worker answers.

Like ``/healthz``, ``/metrics`` needs no user: operators keep it to their
network (a NetworkPolicy, a firewall), or set ``metrics_token`` and scrape
with that bearer token (Prometheus' ``authorization`` of a scrape config).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from craton_wf.domain.states import FINAL_JOB_STATES, FINAL_RUN_STATES, JobStatus, RunStatus
from craton_wf.errors import AuthenticationFailed
from craton_wf.process_metrics import bearer_matches, multiprocess_dir, process_metrics
from craton_wf.services.fleet import FleetFigures, read_figures
from craton_wf.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(tags=["system"])

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # no route reached: an unknown path, or refused before routing


def install_metrics(app: FastAPI, settings: Settings) -> None:
    """``/metrics`` on ``app``, and the counting of every request it answers."""
    registry = CollectorRegistry(auto_describe=False)
    shared = multiprocess_dir()
    if shared is not None:
        MultiProcessCollector(registry, path=shared)
    else:
        registry.register(_ThisProcess())
    sessions = app.state.read_sessions
    registry.register(
        FleetCollector(sessions, settings.lease_seconds, settings.metrics_cache_seconds)
    )
    app.state.metrics_registry = registry
    app.include_router(router)
    app.add_middleware(HttpMetrics)  # outermost: every answer is counted, refusals included


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    token = request.app.state.settings.metrics_token
    # An empty token (CRATON_WF_METRICS_TOKEN=) is none, as for a runner's port.
    if token and not bearer_matches(token.get_secret_value(), request.headers.get("authorization")):
        raise AuthenticationFailed("/metrics needs the metrics token as a bearer token")
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(request.app.state.metrics_registry), media_type=content_type)


class _ThisProcess:
    """This process's registry, as one collector of the scrape's."""

    def collect(self) -> Iterator[Metric]:
        yield from process_metrics().registry.collect()


class FleetCollector:
    """The fleet's figures (:func:`craton_wf.services.fleet.read_figures`) as metric families."""

    def __init__(
        self, sessions: sessionmaker[Session], lease_seconds: float, cache_seconds: float
    ) -> None:
        self.sessions = sessions
        self.lease_seconds = lease_seconds
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._read: tuple[float, FleetFigures, float] | None = None  # when, figures, cost

    def figures(self) -> tuple[FleetFigures, float]:
        """The figures, read at most once per ``cache_seconds``; and what reading cost."""
        with self._lock:
            now = time.monotonic()
            if self._read is None or now - self._read[0] >= self.cache_seconds:
                with self.sessions() as session:
                    figures = read_figures(session, self.lease_seconds)
                self._read = (now, figures, time.monotonic() - now)
            return self._read[1], self._read[2]

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "craton_fleet_up", "Whether the database answered the fleet's figures (1) or not (0)"
        )
        try:
            figures, cost = self.figures()
        except Exception as exc:  # the process's own figures are still worth a scrape
            log.warning("/metrics: the database did not answer the fleet's figures: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _gauge(
            "craton_fleet_query_seconds",
            "Time the last reading of the fleet's figures from the database took",
            cost,
        )
        yield from _state_families(figures)
        yield _gauge(
            "craton_approvals_pending",
            "Tasks whose READY build waits for an admin's decision",
            figures.approvals_pending,
        )
        yield _gauge(
            "craton_runners_alive",
            "Runners heard from within a lease and not stopped",
            figures.runners_alive,
        )
        heartbeat = GaugeMetricFamily(
            "craton_runner_heartbeat_age_seconds",
            "Seconds since each runner's last heartbeat (runners not stopped, "
            "heard from within the last hour)",
            labels=["runner", "name", "executor"],
        )
        for runner in figures.runners:
            heartbeat.add_metric([runner.id, runner.name, runner.executor], runner.age_seconds)
        yield heartbeat


def _state_families(figures: FleetFigures) -> Iterator[Metric]:
    """Jobs and runs: final states as counters, the others as gauges; every state
    always present (a series that appears at 1 hides its first increase)."""
    jobs_finished = CounterMetricFamily(
        "craton_jobs_finished",
        "Jobs that reached a final state, by state (never goes down)",
        labels=["status"],
    )
    jobs = GaugeMetricFamily("craton_jobs", "Jobs not finished yet, by state", labels=["status"])
    for status in JobStatus:
        if status in FINAL_JOB_STATES:
            jobs_finished.add_metric([status.value], figures.finished_jobs(status.value))
        else:
            jobs.add_metric([status.value], figures.jobs.get(status.value, 0))
    runs_finished = CounterMetricFamily(
        "craton_runs_finished",
        "Runs (one step on one host) that reached a final state, by state (never goes down)",
        labels=["status"],
    )
    runs = GaugeMetricFamily(
        "craton_runs",
        "Runs not finished yet, by state: PENDING (waiting for earlier steps), QUEUED "
        "(waiting for a runner), STARTING, RUNNING",
        labels=["status"],
    )
    for run_status in RunStatus:
        if run_status in FINAL_RUN_STATES:
            runs_finished.add_metric([run_status.value], figures.finished_runs(run_status.value))
        else:
            runs.add_metric([run_status.value], figures.runs.get(run_status.value, 0))
    yield from (jobs_finished, jobs, runs_finished, runs)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class HttpMetrics:
    """Counts every HTTP request by method, route template and status, and times
    it to its response's start (a stream's length is not the server's latency)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics = process_metrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer: dict[str, Any] = {"status": 500, "after": None}

        async def send_noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["after"] = time.perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, send_noting)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            after = answer["after"]
            self.metrics.http_requests.labels(method, route, str(answer["status"])).inc()
            self.metrics.http_duration.labels(method, route).observe(
                time.perf_counter() - started if after is None else after
            )
