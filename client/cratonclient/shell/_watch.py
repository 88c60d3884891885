"""Waiting for builds and jobs: progress displays and followed logs.

Progress goes to stderr. On a terminal it is a rich live display (a spinner
with the build's status, a bar of finished hosts for a job); elsewhere (CI
logs, a pipe) it is one plain line per change, so a log file shows what
happened without escape codes or a line per poll.

A follow stream ends when the server says the build or job is finished. A
job's log stream cut before that (a server restart, a proxy's timeout, the
network) is opened again after the last line printed (``Last-Event-ID``), so
every line is printed once; a build's falls back to polling for the lines it
missed. A job's watch outlives the server going away for a while
(:class:`Reconnecting`, trying again less and less often): the job runs on
in the runners. Past that, the error is the command's (``ERROR:``, exit 1).
"""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

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
from ..exceptions import ClientError, ConnectionFailed, HTTPError
from ._common import Context

T = TypeVar("T")

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

#: How long a watch keeps trying a server that went away (a restart, a rollout).
RECONNECT_SECONDS = 300.0
#: The longest wait between two tries, in poll intervals (0.5, 1, 2, 4, 8, 8...).
MAX_BACKOFF = 8.0
#: Jobs with at most this many hosts show each running host's step while waited for.
MAX_HOSTS_DETAILED = 50
#: Server answers that mean it is restarting or behind a proxy that lost it.
_UNAVAILABLE = frozenset({502, 503, 504})


class Reconnecting:
    """Keeps a watch going while the server is unreachable or restarting.

    A job runs on in the runners whatever happens to the API process, so a
    watch that lost the server says so, keeps trying for
    :data:`RECONNECT_SECONDS`, and carries on where it was once it answers.
    """

    def __init__(self, ctx: Context, limit: float | None = None) -> None:
        self.ctx = ctx
        self.limit = RECONNECT_SECONDS if limit is None else limit
        self._deadline: float | None = None
        self._tries = 0

    def lost(self, exc: ClientError) -> None:
        """Note the loss and wait before the next try, longer each time (up to
        :data:`MAX_BACKOFF` poll intervals); re-raise ``exc`` if not worth one, or
        once the server has been away for ``limit`` seconds."""
        if isinstance(exc, HTTPError) and exc.status not in _UNAVAILABLE:
            raise exc
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self.limit
            self.ctx.out.note(
                f"Lost the server ({exc.message}); reconnecting for up to {int(self.limit)} s..."
            )
        elif now > self._deadline:
            raise exc
        time.sleep(POLL_INTERVAL * min(2**self._tries / 2, MAX_BACKOFF))
        self._tries += 1

    def back(self) -> None:
        self._tries = 0
        if self._deadline is not None:
            self._deadline = None
            self.ctx.out.note("Reconnected.")

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func(*args, **kwargs)``, tried again while the server is away."""
        while True:
            try:
                result = func(*args, **kwargs)
            except (ConnectionFailed, HTTPError) as exc:
                self.lost(exc)
                continue
            self.back()
            return result


def host_counts(job: Mapping[str, Any]) -> Counter[str]:
    hosts = ((job.get("summary") or {}).get("hosts")) or {}
    return Counter({str(k): int(v) for k, v in hosts.items() if v})


def describe_job(job: Mapping[str, Any]) -> str:
    counts = host_counts(job)
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    text = f"job {job['id']} {job.get('status')}" + describe_wave(job)
    return text + (f": hosts {parts}" if parts else "")


def describe_wave(job: Mapping[str, Any]) -> str:
    """``, wave 2/4``; at a gate ``: waiting for job-resume (wave 1/4 done)``; empty
    for a job without waves."""
    waves = len(job.get("wave_sizes") or [])
    if not waves or job.get("status") in JOB_FINISHED:
        return ""
    wave = f"wave {job.get('current_wave')}/{waves}"
    if job.get("status") == "PAUSED":
        return f": waiting for job-resume ({wave} done)"
    starts = _when(job.get("next_wave_at"))
    if starts is not None:
        return f", {wave} done, the next starts at {starts:%H:%M:%S} UTC"
    return f", {wave}"


def elapsed_since(start: Any, end: Any = None) -> str | None:
    """``00:12:03`` from ``start`` to ``end`` (ISO times; to now without ``end``)."""
    started = _when(start)
    if started is None:
        return None
    finished = _when(end) or datetime.now(UTC)
    seconds = max(0, int((finished - started).total_seconds()))
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def current_steps(job: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """``host 2/3 web-2, step 5/9 patch``: each host with a run in progress."""
    hosts: dict[Any, str] = {}
    for run in sorted(runs, key=lambda r: (r.get("job_host_id") or 0, r.get("id") or 0)):
        if run.get("job_host_id") is not None:
            hosts.setdefault(run["job_host_id"], str(run.get("host_name") or ""))
    total_hosts = sum(host_counts(job).values()) or len(hosts)
    total_steps = len(job.get("steps") or []) or None
    positions = {job_host: i for i, job_host in enumerate(hosts, 1)}
    lines = []
    for run in runs:
        if run.get("status") not in ("RUNNING", "CANCELLING"):
            continue
        where = "the job"
        if run.get("job_host_id") in positions:
            where = f"host {positions[run['job_host_id']]}/{total_hosts} {run.get('host_name')}"
        step = int(run.get("step_index") or 0) + 1
        of = f"/{total_steps}" if total_steps else ""
        lines.append(f"{where}, step {step}{of} {run.get('step_name')}")
    return sorted(lines)


def _progress_text(
    ctx: Context, job: Mapping[str, Any], detailed: bool, retry: Reconnecting
) -> str:
    """The job's status line; with ``detailed``, the step each running host is at."""
    text = describe_job(job)
    if detailed and job.get("status") not in JOB_FINISHED:
        steps = current_steps(job, retry.call(ctx.client.jobs.runs, job["id"]))
        if steps:
            text += "; " + "; ".join(steps)
    return text


def wait_for_job(ctx: Context, job: Mapping[str, Any]) -> Resource:
    """Show the job's host counts, and for a small job the step each running host is at,
    until it is finished; answer the finished job."""
    console = ctx.out.err
    jobs = ctx.client.jobs
    retry = Reconnecting(ctx)
    detailed = sum(host_counts(job).values()) <= MAX_HOSTS_DETAILED

    def polls() -> Iterator[Resource]:
        while True:
            current = retry.call(jobs.get, job["id"])
            yield current
            if current.get("status") in JOB_FINISHED:
                return
            sleep()

    if not console.is_terminal:
        last = ""
        for current in polls():
            line = _progress_text(ctx, current, detailed, retry)
            if line != last:  # the time alone changing is not news in a log file
                took = elapsed_since(current.get("started_at"), current.get("finished_at"))
                ctx.out.note(f"{line}, {took}" if took else line)
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
        for current in polls():
            counts = host_counts(current)
            done = sum(n for status, n in counts.items() if status not in ACTIVE_HOST_STATUSES)
            total = sum(counts.values()) or None
            text = _progress_text(ctx, current, detailed, retry)
            progress.update(bar, description=text, total=total, completed=done)
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
    """Print the job's log lines as they come until the job is finished; answer the job.

    The lines come from the server's event stream. When it is cut before its
    end (a server restart, a proxy's timeout, the network), it is opened again
    with the last line's id as ``Last-Event-ID``, and the server goes on with
    exactly the lines after it: none printed twice, none missed.
    """
    jobs = ctx.client.jobs
    retry = Reconnecting(ctx)
    last_id = 0
    while True:
        printed = False
        try:
            for entry in jobs.logs(
                job_id, host=host, step=step, after=last_id, follow=True, last_event_id=last_id
            ):
                retry.back()
                if entry.get("end"):
                    return retry.call(jobs.get, job_id)
                print_job_log(ctx, entry)
                printed = True
                last_id = int(entry.get("id", last_id))
            # Ended without its end: cut cleanly (a proxy's timeout), or a server that
            # answers a page instead of a stream; a finished job's last page is empty.
            job = retry.call(jobs.get, job_id)
            if not printed:
                if job.get("status") in JOB_FINISHED:
                    return job
                sleep()
        except (ConnectionFailed, HTTPError) as exc:
            retry.lost(exc)
