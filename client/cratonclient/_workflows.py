"""Workflows: named, versioned lists (or graphs) of steps."""

from __future__ import annotations

from typing import Any

from ._managers import Id, Manager
from ._resource import Resource


class WorkflowManager(Manager):
    """Workflows. A step is ``{"task": id_or_name, "name"?, "args"?, "timeout"?,
    "retries"?, "required"?, "depends_on"?}``; updating steps or description
    makes a new version.
    """

    path = "/v1/workflows"
    key = "workflows"
    noun = "workflow"

    def get(self, id: Id, version: int | None = None, **params: Any) -> Resource:
        """The workflow, at its latest version or at ``version``."""
        return super().get(id, version=version, **params)

    def versions(self, id: Id) -> list[Resource]:
        items = self._session.iter_items(self._url(id, "versions"), "versions")
        return [Resource(v) for v in items]

    def validate(self, **definition: Any) -> Resource:
        """Check ``{name?, description?, steps}`` as creating it would; nothing is written.

        Answers ``{"valid": true, "name", "exists", "steps"}`` (the steps as they
        would be stored); an invalid workflow raises the server's error.
        """
        return Resource(self._session.post_json(self._url("validate"), definition))
