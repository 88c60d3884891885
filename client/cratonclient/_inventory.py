"""Managers of the inventory: projects, clouds, regions, cells and hosts."""

from __future__ import annotations

import re
from typing import Any

from ._managers import Id, Manager, VariablesMixin
from ._resource import Resource

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


class ProjectManager(VariablesMixin, Manager):
    path = "/v1/projects"
    key = "projects"
    noun = "project"

    def is_id(self, value: Id) -> bool:
        """Project ids are UUIDs."""
        return bool(_UUID.match(str(value)))

    def resolve_id(self, id_or_name: Id) -> Id:
        if self.is_id(id_or_name):
            return str(id_or_name)
        return self._find_by_name(str(id_or_name))["id"]


class CloudManager(VariablesMixin, Manager):
    path = "/v1/clouds"
    key = "clouds"
    noun = "cloud"


class RegionManager(VariablesMixin, Manager):
    path = "/v1/regions"
    key = "regions"
    noun = "region"


class CellManager(VariablesMixin, Manager):
    path = "/v1/cells"
    key = "cells"
    noun = "cell"


class HostManager(VariablesMixin, Manager):
    """Hosts; list filters include ``label=[...]`` (all must match) and ``vars=["path:value"]``."""

    path = "/v1/hosts"
    key = "hosts"
    noun = "host"

    def get(self, id: Id, resolved: bool | None = None, **params: Any) -> Resource:
        """The host; ``resolved`` picks whether ``variables`` include inherited ones."""
        if resolved is not None:
            params["resolved-values"] = resolved
        return super().get(id, **params)

    def get_labels(self, id: Id) -> list[str]:
        return list(self._session.get_json(self._url(id, "labels")).get("labels", []))

    def set_labels(self, id: Id, labels: list[str]) -> list[str]:
        """Replace the host's labels."""
        body = self._session.put_json(self._url(id, "labels"), {"labels": list(labels)})
        return list((body or {}).get("labels", []))

    def ansible_inventory(self, **filters: Any) -> dict[str, Any]:
        """The Ansible JSON inventory (filters ``region``, ``cell``, ``label``)."""
        return dict(self._session.get_json("/v1/ansible-inventory", filters))
