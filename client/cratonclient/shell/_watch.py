"""Waiting for builds and jobs: progress displays and followed logs.

Progress goes to stderr. On a terminal it is a rich live display (a spinner
with the build's status, a bar of finished hosts for a job); elsewhere (CI
logs, a pipe) it is one plain line per change, so a log file shows what
happened without escape codes or a line per poll.

A follow stream ends when the server says the build or job is finished. If
it ends early (a proxy timeout, a server restart) the watcher falls back to
polling, fetching the log lines it missed, until the object is finished.
"""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.status import Status
from rich.text import Text

from .._jobs import JOB_FINISHED
from .._managers import Id
from .._resource import Resource
from .._tasks import BUILD_FINISHED
from ._common import Context

#: Seconds between two polls of a build or a job.
POLL_INTERVAL = 1.0
#: Build log lines kept to show when a build fails.
MAX_BUILD_LINES = 2000
#: Host statuses of a job that are not finished yet.
ACTIVE_HOST_STATUSES = frozenset({"PENDING", "QUEUED", "RUNNING", "CANCELLING"})


def sleep() -> None:
    time.sleep(POLL_INTERVAL)


class StatusDisplay:
    """A one-line status plus lines scrolling above it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live: Status | None = None
        self._last = ""

    def __enter__(self) -> StatusDisplay:
        if self.console.is_terminal:
            self._live = self.console.status("")
            self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.stop()

    @property
    def live(self) -> bool:
        """A display updated in place (a terminal), not one line per change."""
        return self._live is not None

    def status(self, text: str) -> None:
        if text == self._last:
            return
        self._last = text
        if self._live is not None:
            self._live.update(Text(text))
        else:
            self.line(text)

    def done(self, text: str) -> None:
        """The final status: a line that stays once the live display is gone."""
        self._last = text
        self.line(text)

    def line(self, text: str) -> None:
        if self._live is not None:
            self.console.print(Text(text), soft_wrap=True)
        else:
            self.console.file.write(text + "\n")
            self.console.file.flush()


# -- builds ------------------------------------------------------------------------

_BUILD_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


def elapsed(since: float) -> str:
    """``00:12:03``: the time since ``since`` (a ``time.monotonic()``)."""
    seconds = int(time.monotonic() - since)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def wait_for_build(
    ctx: Context, task: Mapping[str, Any], build_id: Id, verbose: bool = False
) -> tuple[Resource, list[str]]:
    """Wait until the build is finished; answer the build and its log (the last lines).

    Only the step being built is shown (``step 2/4 RUN make, 00:00:07``);
    ``verbose`` prints every log line as it comes instead.
    """
    tasks = ctx.client.tasks
    log: deque[str] = deque(maxlen=MAX_BUILD_LINES)
    after = 0
    label = f"task {task['name']}"
    started = time.monotonic()
    step = ""

    def show(entry: Mapping[str, Any]) -> None:
        nonlocal after, step
        if "line" in entry:
            line = str(entry["line"])
            log.append(line)
            if verbose:
                display.line(line)
            elif match := _BUILD_STEP.match(line):
                step = f"step {match[1]}/{match[2]} {match[3][:60]}"
                display.status(f"Building {label}: {step}, {elapsed(started)}")
        after = entry.get("seq", after)

    with StatusDisplay(ctx.out.err) as display:
        display.status(f"Building {label}...")
        for entry in tasks.build_logs(task["id"], build_id, follow=True):
            show(entry)
        build = tasks.get_build(task["id"], build_id)
        while build.get("status") not in BUILD_FINISHED:
            if display.live:
                display.status(
                    f"Building {label}: {step or build.get('status')}, {elapsed(started)}"
                )
            sleep()
            for entry in tasks.build_logs(task["id"], build_id, after=after):
                show(entry)
            build = tasks.get_build(task["id"], build_id)
        display.done(
            f"{label}: build {build.get('number', build.get('id'))} {build['status']}"
            f" ({elapsed(started)})"
        )
    return build, list(log)


# -- jobs --------------------------------------------------------------------------


def host_counts(job: Mapping[str, Any]) -> Counter[str]:
    hosts = ((job.get("summary") or {}).get("hosts")) or {}
    return Counter({str(k): int(v) for k, v in hosts.items() if v})


def describe_job(job: Mapping[str, Any]) -> str:
    counts = host_counts(job)
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return f"job {job['id']} {job.get('status')}" + (f": hosts {parts}" if parts else "")


def wait_for_job(ctx: Context, job: Mapping[str, Any]) -> Resource:
    """Show the job's host counts until it is finished; answer the finished job."""
    console = ctx.out.err
    polls = ctx.client.jobs.poll(job["id"], interval=POLL_INTERVAL, sleep=lambda _: sleep())
    if not console.is_terminal:
        last = ""
        for current in polls:
            line = describe_job(current)
            if line != last:
                ctx.out.note(line)
                last = line
        return current
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(describe_job(job), total=sum(host_counts(job).values()) or None)
        for current in polls:
            counts = host_counts(current)
            done = sum(n for status, n in counts.items() if status not in ACTIVE_HOST_STATUSES)
            total = sum(counts.values()) or None
            progress.update(bar, description=describe_job(current), total=total, completed=done)
    return current


def format_log(entry: Mapping[str, Any]) -> str:
    """``[host step] line``; lines the container wrote to stderr say so."""
    where = " ".join(str(entry[k]) for k in ("host_name", "step_name") if entry.get(k) is not None)
    if entry.get("stream") == "stderr":
        where = f"{where} stderr" if where else "stderr"
    return f"[{where}] {entry.get('line', '')}"


def print_job_log(ctx: Context, entry: Mapping[str, Any]) -> None:
    if ctx.out.is_table:
        ctx.out.text(format_log(entry))
    else:
        ctx.out.raw_line(entry)


def follow_job_logs(
    ctx: Context, job_id: Id, host: str | None = None, step: str | None = None
) -> Resource:
    """Print the job's log lines as they come until the job is finished; answer the job."""
    jobs = ctx.client.jobs
    after = 0
    for entry in jobs.logs(job_id, host=host, step=step, follow=True):
        if "line" in entry:
            print_job_log(ctx, entry)
        after = entry.get("id", after)
    job = jobs.get(job_id)
    while job.get("status") not in JOB_FINISHED:
        sleep()
        for entry in jobs.logs(job_id, host=host, step=step, after=after):
            print_job_log(ctx, entry)
            after = entry.get("id", after)
        job = jobs.get(job_id)
    return job
