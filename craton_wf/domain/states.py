"""State machines of builds, jobs, job hosts and runs.

Each machine is an enum plus the table of allowed transitions; every status
change goes through :func:`check_transition`, so an illegal move is a bug that
surfaces as ``Conflict`` instead of silently corrupting a job.
"""

from __future__ import annotations

from enum import StrEnum

from craton_wf.errors import Conflict


class BuildStatus(StrEnum):
    """Image states named by Craton's workflow drafts."""

    PENDING = "BUILD PENDING"
    BUILDING = "BUILDING"
    READY = "READY"
    FAILED = "BUILD FAILED"


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"  # between rollout waves, at a gate: waits for a resume
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class HostStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


class RunStatus(StrEnum):
    PENDING = "PENDING"  # waiting for its dependencies or its host's turn
    QUEUED = "QUEUED"  # runnable, waiting for a runner
    STARTING = "STARTING"  # claimed by a runner, container being created
    RUNNING = "RUNNING"  # container started
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    SKIPPED = "SKIPPED"  # never ran: an earlier step failed or the budget ran out
    CANCELLED = "CANCELLED"


BUILD_TRANSITIONS: dict[BuildStatus, set[BuildStatus]] = {
    BuildStatus.PENDING: {BuildStatus.BUILDING, BuildStatus.FAILED},
    BuildStatus.BUILDING: {BuildStatus.READY, BuildStatus.FAILED, BuildStatus.PENDING},
    BuildStatus.READY: set(),
    BuildStatus.FAILED: set(),
}

JOB_TRANSITIONS: dict[JobStatus, set[JobStatus]] = {
    JobStatus.PENDING: {
        JobStatus.RUNNING,
        JobStatus.CANCELLING,
        JobStatus.CANCELLED,
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.PAUSED,
    },
    JobStatus.RUNNING: {
        JobStatus.PAUSED,
        JobStatus.CANCELLING,
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    },
    # A paused job is resumed, or aborted (cancelled) with the hosts left.
    JobStatus.PAUSED: {JobStatus.RUNNING, JobStatus.CANCELLING, JobStatus.CANCELLED},
    JobStatus.CANCELLING: {JobStatus.CANCELLED},
    JobStatus.SUCCEEDED: set(),
    JobStatus.FAILED: set(),
    JobStatus.CANCELLED: set(),
}

HOST_TRANSITIONS: dict[HostStatus, set[HostStatus]] = {
    HostStatus.PENDING: {
        HostStatus.RUNNING,
        HostStatus.SKIPPED,
        HostStatus.CANCELLED,
        HostStatus.SUCCEEDED,
    },
    HostStatus.RUNNING: {HostStatus.SUCCEEDED, HostStatus.FAILED, HostStatus.CANCELLED},
    HostStatus.SUCCEEDED: set(),
    HostStatus.FAILED: set(),
    HostStatus.SKIPPED: set(),
    HostStatus.CANCELLED: set(),
}

_RUN_FINAL = {
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.TIMED_OUT,
    RunStatus.SKIPPED,
    RunStatus.CANCELLED,
}

RUN_TRANSITIONS: dict[RunStatus, set[RunStatus]] = {
    RunStatus.PENDING: {RunStatus.QUEUED, RunStatus.SKIPPED, RunStatus.CANCELLED},
    RunStatus.QUEUED: {RunStatus.STARTING, RunStatus.SKIPPED, RunStatus.CANCELLED},
    # STARTING -> QUEUED: the runner gave the run back (or lost it) before a container ran.
    RunStatus.STARTING: {RunStatus.RUNNING, RunStatus.QUEUED} | _RUN_FINAL - {RunStatus.SKIPPED},
    RunStatus.RUNNING: {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.TIMED_OUT,
        RunStatus.CANCELLED,
        RunStatus.QUEUED,  # retry of a temporary failure
    },
    RunStatus.SUCCEEDED: set(),
    RunStatus.FAILED: set(),
    RunStatus.TIMED_OUT: set(),
    RunStatus.SKIPPED: set(),
    RunStatus.CANCELLED: set(),
}

FINAL_JOB_STATES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
FINAL_HOST_STATES = frozenset(
    {HostStatus.SUCCEEDED, HostStatus.FAILED, HostStatus.SKIPPED, HostStatus.CANCELLED}
)
FINAL_RUN_STATES = frozenset(_RUN_FINAL)
ACTIVE_RUN_STATES = frozenset({RunStatus.STARTING, RunStatus.RUNNING})

_TABLES: dict[type, dict] = {
    BuildStatus: BUILD_TRANSITIONS,
    JobStatus: JOB_TRANSITIONS,
    HostStatus: HOST_TRANSITIONS,
    RunStatus: RUN_TRANSITIONS,
}


def can_transition(current: StrEnum, new: StrEnum) -> bool:
    if current == new:
        return True
    table = _TABLES[type(current)]
    return new in table[current]


def check_transition(current: StrEnum, new: StrEnum, what: str = "object") -> None:
    """Raise ``Conflict`` unless ``current -> new`` is an allowed move."""
    if not can_transition(current, new):
        raise Conflict(f"{what} cannot go from {current.value} to {new.value}")
