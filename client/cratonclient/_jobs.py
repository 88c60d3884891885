"""Jobs (a workflow or a task run over hosts) and the runners that execute them."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from ._managers import Id, Manager
from ._resource import Resource
from ._sse import follow_items

#: A job in one of these statuses will not change any more.
JOB_FINISHED = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


class JobManager(Manager):
    path = "/v1/jobs"
    key = "jobs"
    noun = "job"

    def create(self, **fields: Any) -> Resource:
        """Start a job.

        Fields: ``workflow`` or ``task`` (id or name), and optionally
        ``workflow_version``, ``name``, ``hosts`` (ids or names), ``filters``
        (``{"region", "cell", "cloud", "label": [...], "device_type",
        "vars": ["path:value"]}``), ``variables``, ``concurrency``,
        ``max_failures``, ``timeout``.
        """
        return super().create(**fields)

    def cancel(self, id: Id) -> Resource:
        return Resource(self._session.post_json(self._url(id, "cancel")))

    def resume(self, id: Id) -> Resource:
        """Start the next wave of a job paused at its wave gate (409 unless PAUSED)."""
        return Resource(self._session.post_json(self._url(id, "resume")))

    def abort(self, id: Id) -> Resource:
        """End a running or paused job: the hosts not started never run."""
        return Resource(self._session.post_json(self._url(id, "abort")))

    def retry(self, id: Id, failed_hosts: bool = False) -> Resource:
        """A new job running this finished job again: on every host, or only the failed ones."""
        return Resource(
            self._session.post_json(self._url(id, "retry"), {"failed_hosts": failed_hosts})
        )

    def hosts(self, id: Id) -> list[Resource]:
        """The job's hosts and how far each got."""
        return [Resource(h) for h in self._session.iter_items(self._url(id, "hosts"), "hosts")]

    def runs(self, id: Id, host: Id | None = None, step: str | None = None) -> list[Resource]:
        """The job's runs (one per step, host and attempt)."""
        items = self._session.iter_items(
            self._url(id, "runs"), "runs", {"host": host, "step": step}
        )
        return [Resource(r) for r in items]

    def events(self, id: Id) -> list[Resource]:
        return [Resource(e) for e in self._session.iter_items(self._url(id, "events"), "events")]

    def follow_events(self, id: Id, last_event_id: int | None = None) -> Iterator[Resource]:
        """The job's events as they happen, then ``{"end": true, "job_status": ...}``
        once it is finished (resumed after ``last_event_id`` as :meth:`logs`)."""
        yield from self._follow(self._url(id, "events"), {}, last_event_id, key="events")

    def _follow(
        self, url: str, params: dict[str, Any], last_event_id: int | None, key: str = "logs"
    ) -> Iterator[Resource]:
        stream = self._session.stream_events(
            url, {**params, "follow": True}, last_event_id=last_event_id, key=key
        )
        yield from map(Resource, follow_items(stream))

    def logs(
        self,
        id: Id,
        host: Id | None = None,
        step: str | None = None,
        after: int = 0,
        follow: bool = False,
        run: Id | None = None,
        last_event_id: int | None = None,
    ) -> Iterator[Resource]:
        """Log lines of the job's containers: ``{"id", "host_name", "step_name", "stream",
        "line"...}``, after line ``after``.

        Without ``follow``, every line written so far (fetched page by page);
        with ``follow``, a live stream whose last item is ``{"end": true,
        "job_status": ...}`` once the job is finished. A follow stream that
        ends without it was cut: open it again with ``last_event_id`` set to
        the last line's id, and it goes on with exactly the lines after it.
        """
        url = self._url(id, "logs")
        params: dict[str, Any] = {"host": host, "step": step, "run": run}
        if follow:
            yield from self._follow(url, {**params, "after": after}, last_event_id)
            return
        while True:
            body = self._session.get_json(url, {**params, "after": after})
            logs = body.get("logs") or []
            for item in logs:
                yield Resource(item)
            next_after = body.get("next_after")
            if not logs or next_after is None or next_after == after:
                return
            after = next_after

    def poll(
        self, id: Id, interval: float = 1.0, sleep: Callable[[float], None] = time.sleep
    ) -> Iterator[Resource]:
        """The job, fetched every ``interval`` seconds until it is finished (last one included)."""
        while True:
            job = self.get(id)
            yield job
            if job.get("status") in JOB_FINISHED:
                return
            sleep(interval)

    def wait(self, id: Id, interval: float = 1.0) -> Resource:
        """The job once it is finished."""
        return deque(self.poll(id, interval), maxlen=1).pop()


class RunnerManager(Manager):
    """The runner processes registered with the server (read-only)."""

    path = "/v1/runners"
    key = "runners"
    noun = "runner"
