"""Job templates: saved launches with typed parameters, and their incoming triggers."""

from __future__ import annotations

from typing import Any

from ._managers import Id, Manager
from ._resource import Resource


class JobTemplateManager(Manager):
    """Job templates. Fields: ``name``, ``workflow`` (and ``workflow_version``; none:
    the latest) or ``task``, ``targets`` (``{"hosts": [...], "filters": {...}}`` as
    a job takes them), ``variables``, ``parameters`` (``[{"name", "type":
    string|int|bool|choice, "default", "required", "description", "choices"}]``),
    ``concurrency``, ``max_failures``, ``timeout``, ``description``.
    """

    path = "/v1/job-templates"
    key = "job_templates"
    noun = "job template"

    def update_fields(self, id: Id, fields: dict[str, Any]) -> Resource:
        """A partial ``PUT`` sending ``fields`` as given, nulls included (``task: None``
        when switching the template to a workflow)."""
        return Resource(self._session.put_json(self._url(id), fields))

    def launch(
        self, id: Id, params: dict[str, Any] | None = None, name: str | None = None
    ) -> Resource:
        """A job from the template; ``params`` fill in its parameters (strings are
        taken for int and bool parameters as typed: ``"3"``, ``"true"``)."""
        body: dict[str, Any] = {"params": params or {}}
        if name is not None:
            body["name"] = name
        return Resource(self._session.post_json(self._url(id, "launch"), body))

    def create_trigger(self, id: Id, description: str | None = None) -> Resource:
        """A trigger URL launching the template (admins); the answer holds its ``secret``,
        shown this once. Its launches act as the caller, with their roles at each call."""
        body = {} if description is None else {"description": description}
        return Resource(self._session.post_json(self._url(id, "triggers"), body))

    def triggers(self, id: Id) -> list[Resource]:
        """The template's triggers (never their secrets)."""
        url = self._url(id, "triggers")
        return [Resource(item) for item in self._session.iter_items(url, "triggers", {})]

    def delete_trigger(self, id: Id, trigger: str) -> None:
        self._session.delete(self._url(id, "triggers", trigger))
