"""Schedules: a job template launched on a cron expression in a time zone."""

from __future__ import annotations

from ._managers import Id, Manager
from ._resource import Resource


class ScheduleManager(Manager):
    """Schedules. Fields: ``name``, ``template`` (id or name), ``cron`` (five fields
    or ``@daily``-style), ``timezone`` (IANA, default UTC), ``params``,
    ``missed_policy`` (skip | run-once), ``overlap_policy`` (allow |
    skip-if-running | queue), ``paused``. Each reads with ``next_fires``.
    """

    path = "/v1/schedules"
    key = "schedules"
    noun = "schedule"

    def pause(self, id: Id) -> Resource:
        return Resource(self._session.post_json(self._url(id, "pause"), {}))

    def resume(self, id: Id) -> Resource:
        """Resumed from now: fires that came due while paused are not made up."""
        return Resource(self._session.post_json(self._url(id, "resume"), {}))

    def fires(self, id: Id) -> list[Resource]:
        """What its latest fires gave: a job, or why none (newest first)."""
        return [Resource(f) for f in self._session.iter_items(self._url(id, "fires"), "fires")]
