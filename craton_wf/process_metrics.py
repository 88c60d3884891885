"""The figures one process observes, in Prometheus' terms (``prometheus-client``).

Two kinds of figures reach ``/metrics`` (docs/metrics.md):

- facts of the whole fleet that live in the database (jobs and runs by state,
  approvals pending, runner heartbeats) are read from it when scraped
  (:mod:`craton_wf.services.fleet`, served by :mod:`craton_wf.api.metrics`),
  so they are right whatever the number of runners and restarts;
- what only a process sees happen (HTTP requests and their latency, container
  starts, run and build durations, log lines stored, lease takeovers, sweeps)
  is counted here, by explicit calls where it happens, into this process's
  :class:`ProcessMetrics`.

A standalone ``craton-wf runner`` serves its own figures on its metrics port
(:mod:`craton_wf.runner.metrics_port`); ``craton-wf serve`` serves them with
the fleet's in one ``/metrics``. With ``serve --workers N`` the API runs in N
processes and the runner in their parent: each process writes its figures to
files in one directory (prometheus-client's multiprocess mode,
:func:`enable_multiprocess`), and whichever worker answers a scrape adds up
every process's files, so a scrape never depends on which worker it reached.

The metric objects are made on first use (:func:`process_metrics`), not at
import: which kind of value they hold (in memory, or in those files) must be
settled first.
"""

from __future__ import annotations

import hmac
import os
import shutil
import threading
from pathlib import Path

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    values,
)

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# Seconds. A run lasts from a blink to hours; a container starts in tens of
# milliseconds on a warm engine and in seconds on a busy one or a cluster.
RUN_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
BUILD_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
START_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ProcessMetrics:
    """This process's counters and histograms, in :attr:`registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

        def counter(name: str, documentation: str, *labels: str) -> Counter:
            return Counter(name, documentation, labels, registry=registry)

        def histogram(
            name: str, documentation: str, buckets: tuple[float, ...], *labels: str
        ) -> Histogram:
            return Histogram(name, documentation, labels, buckets=buckets, registry=registry)

        self.http_requests = counter(
            "craton_http_requests_total",
            "HTTP requests answered, by method, route template and status code",
            *("method", "route", "status"),
        )
        self.http_duration = histogram(
            "craton_http_request_duration_seconds",
            "Time from a request's arrival to its response's start, by method and route template",
            HTTP_BUCKETS,
            *("method", "route"),
        )
        self.run_duration = histogram(
            "craton_run_duration_seconds",
            "Attempts this process started and saw end: container start to recorded "
            "outcome, by outcome",
            RUN_BUCKETS,
            "outcome",
        )
        self.container_start = histogram(
            "craton_container_start_seconds",
            "Time to create and start a run's container on the executor",
            START_BUCKETS,
            "executor",
        )
        self.build_duration = histogram(
            "craton_build_duration_seconds",
            "Builds this process ran: claim to recorded result, by outcome",
            BUILD_BUCKETS,
            "outcome",
        )
        self.log_lines = counter(
            "craton_log_lines_stored_total",
            "Run log lines this process stored (committed), markers included",
        )
        self.log_bytes = counter(
            "craton_log_bytes_stored_total",
            "Bytes of run log lines this process stored (committed), as stored",
        )
        self.lease_takeovers = counter(
            "craton_lease_takeovers_total",
            "Started runs this process took over from a runner whose lease expired",
        )
        self.sweeps = counter(
            "craton_sweeps_total", "Sweeps for containers left behind that this process made"
        )
        self.swept_containers = counter(
            "craton_swept_containers_total",
            "Containers left behind that this process's sweeps removed",
        )


_lock = threading.Lock()
_metrics: ProcessMetrics | None = None


def process_metrics() -> ProcessMetrics:
    """This process's metrics, made on first use."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                # No `<name>_created` series beside every counter and histogram:
                # they double the series, and a scrape's resets are what rate() uses.
                disable_created_metrics()
                registry = CollectorRegistry(auto_describe=True)
                if multiprocess_dir() is None:
                    # The process' own CPU, memory, file descriptors and collector:
                    # meaningless summed over processes, so only in one-process mode.
                    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                        registry.register(collector)
                _metrics = ProcessMetrics(registry)
    return _metrics


def multiprocess_dir() -> str | None:
    """The directory of every process's figures, when this process shares one."""
    return os.environ.get(MULTIPROCESS_VARIABLE) or None


def enable_multiprocess(directory: Path) -> None:
    """Count into files in ``directory``, emptied first, and have the processes
    started from here (they inherit the environment) do the same.

    Called before :func:`process_metrics` is first used.
    """
    if _metrics is not None:
        raise RuntimeError("process metrics are made already; too late for multiprocess mode")
    shutil.rmtree(directory, ignore_errors=True)  # a dead server's figures are not ours
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_VARIABLE] = str(directory)
    values.ValueClass = values.MultiProcessValue()


def disable_multiprocess(directory: Path) -> None:
    """At the server's end: its figures' files go."""
    os.environ.pop(MULTIPROCESS_VARIABLE, None)
    shutil.rmtree(directory, ignore_errors=True)


def bearer_matches(token: str, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header is ``Bearer <token>`` (compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
