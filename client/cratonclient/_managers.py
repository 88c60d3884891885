"""The manager base: list, get, create, update, delete and name resolution.

A manager owns one collection of the API (``/v1/hosts``). Subclasses set the
path, the key of the list answer and the noun used in messages, and add what
their resource has beyond CRUD.

Lists come in three shapes:

- ``list(**filters)``: every object, following ``next`` links until exhausted;
- ``iter(**filters)``: the same, lazily, one page in memory at a time;
- ``list_page(limit=, marker=, ...)``: one page and the marker of the next.

Name resolution (:meth:`Manager.find`, :meth:`Manager.resolve_id`): an
argument that looks like an id (all digits; a UUID for projects) is an id;
anything else is a name, looked up with the ``name`` filter and required to
match exactly one object. The match is checked on the client too, so a
server that filtered by prefix, or not at all, cannot pick the wrong object.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

from . import exceptions
from ._resource import Page, Resource
from ._session import Session, marker_of

Id = int | str


def sort_params(
    sort_keys: str | Sequence[str] | None, sort_dir: str | None
) -> dict[str, str | None]:
    if sort_keys is not None and not isinstance(sort_keys, str):
        sort_keys = ",".join(sort_keys)
    return {"sort_keys": sort_keys, "sort_dir": sort_dir}


class Manager:
    """CRUD on one collection of the API."""

    path: ClassVar[str]
    key: ClassVar[str]
    noun: ClassVar[str]

    def __init__(self, session: Session) -> None:
        self._session = session

    def _url(self, *parts: Id) -> str:
        return "/".join([self.path, *(str(p) for p in parts)])

    # -- lists ----------------------------------------------------------------

    def iter(
        self,
        *,
        sort_keys: str | Sequence[str] | None = None,
        sort_dir: str | None = None,
        page_size: int | None = None,
        marker: Id | None = None,
        **filters: Any,
    ) -> Iterator[Resource]:
        """Every object matching ``filters``, fetched page by page as it is consumed."""
        params = {**filters, **sort_params(sort_keys, sort_dir), "limit": page_size}
        params["marker"] = marker
        for item in self._session.iter_items(self.path, self.key, params):
            yield Resource(item)

    def list(
        self,
        *,
        sort_keys: str | Sequence[str] | None = None,
        sort_dir: str | None = None,
        page_size: int | None = None,
        marker: Id | None = None,
        **filters: Any,
    ) -> list[Resource]:
        """Every object matching ``filters``, following the ``next`` links to the end.

        ``page_size`` is the ``limit`` asked of each request (server default
        100, max 1000); ``marker`` starts after that object.
        """
        return list(
            self.iter(
                sort_keys=sort_keys,
                sort_dir=sort_dir,
                page_size=page_size,
                marker=marker,
                **filters,
            )
        )

    def list_page(
        self,
        *,
        limit: int | None = None,
        marker: Id | None = None,
        sort_keys: str | Sequence[str] | None = None,
        sort_dir: str | None = None,
        **filters: Any,
    ) -> Page:
        """One page: at most ``limit`` objects after ``marker``, and the next page's marker."""
        params = {**filters, **sort_params(sort_keys, sort_dir), "limit": limit, "marker": marker}
        items, link = self._session.get_page(self.path, self.key, params)
        return Page([Resource(i) for i in items], marker_of(link), link)

    # -- one object -----------------------------------------------------------

    def get(self, id: Id, **params: Any) -> Resource:
        return Resource(self._session.get_json(self._url(id), params))

    def create(self, **fields: Any) -> Resource:
        return Resource(self._session.post_json(self.path, _drop_none(fields)))

    def update(self, id: Id, **fields: Any) -> Resource:
        """Change the given fields (a partial ``PUT``); ``None`` values are not sent."""
        return Resource(self._session.put_json(self._url(id), _drop_none(fields)))

    def delete(self, id: Id) -> None:
        self._session.delete(self._url(id))

    # -- names ----------------------------------------------------------------

    def is_id(self, value: Id) -> bool:
        """Whether ``value`` is an id of this collection rather than a name."""
        return isinstance(value, int) or str(value).isdigit()

    def resolve_id(self, id_or_name: Id) -> Id:
        """The id of the object named ``id_or_name`` (no request if it is an id already)."""
        if self.is_id(id_or_name):
            return int(id_or_name) if str(id_or_name).isdigit() else id_or_name
        return self._find_by_name(str(id_or_name))["id"]

    def find(self, id_or_name: Id, **params: Any) -> Resource:
        """The object with this id, or the only object with this name."""
        if self.is_id(id_or_name):
            return self.get(self.resolve_id(id_or_name), **params)
        found = self._find_by_name(str(id_or_name))
        return self.get(found["id"], **params) if params else found

    def _find_by_name(self, name: str) -> Resource:
        matches = [r for r in self.iter(name=name) if r.get("name") == name]
        if not matches:
            raise exceptions.NotFound(404, f"No {self.noun} with name or id '{name}'.", "not_found")
        if len(matches) > 1:
            ids = ", ".join(str(m["id"]) for m in matches)
            raise exceptions.NoUniqueMatch(
                f"{len(matches)} {self.noun}s are named '{name}' (ids {ids}); use an id."
            )
        return matches[0]


class VariablesMixin:
    """``/<things>/{id}/variables`` of projects, clouds, regions, cells and hosts."""

    _session: Session
    _url: Any

    def get_variables(self, id: Id, resolved: bool = True) -> dict[str, Any]:
        """The object's variables; ``resolved`` includes those inherited from its parents."""
        body = self._session.get_json(
            self._url(id, "variables"), {"resolved-values": bool(resolved)}
        )
        return dict(body.get("variables", {}))

    def set_variables(self, id: Id, variables: dict[str, Any]) -> dict[str, Any]:
        """Merge ``variables`` into the object's own; answer its own variables after."""
        body = self._session.put_json(self._url(id, "variables"), dict(variables))
        return dict((body or {}).get("variables", {}))

    def delete_variables(self, id: Id, keys: Iterable[str]) -> None:
        """Remove the given top-level keys from the object's own variables."""
        self._session.delete(self._url(id, "variables"), list(keys))


def _drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}
