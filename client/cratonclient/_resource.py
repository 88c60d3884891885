"""The client's own small models: a resource and a page of resources.

The client never imports the server's classes. A :class:`Resource` is the JSON
object the server sent, with attribute access on top (``host.name``) and
``to_dict()`` to get a copy of the raw data back. Nested objects stay plain
dicts and lists: they have no identity of their own in the API, and keeping
them raw means a field the server adds later is never lost or renamed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class Resource(Mapping[str, Any]):
    """One object of the API, read-only.

    >>> host = Resource({"id": 3, "name": "compute-1"})
    >>> host.name, host["id"], host.get("cell_id")
    ('compute-1', 3, None)
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_data", dict(data))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never a field; also keeps copy/pickle from recursing
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("resources are read-only; use the manager's update()")

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._data))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Resource):
            return self._data == other._data
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = {k: self._data[k] for k in ("id", "name", "status") if k in self._data}
        inner = ", ".join(f"{k}={v!r}" for k, v in shown.items()) or "..."
        return f"<Resource {inner}>"

    def __reduce__(self) -> tuple[type[Resource], tuple[dict[str, Any]]]:
        return (type(self), (self._data,))

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the object as the server sent it."""
        return copy.deepcopy(self._data)


@dataclass
class Page:
    """One page of a list: its items and the marker that fetches the next page.

    ``next_marker`` is ``None`` on the last page.
    """

    items: list[Resource]
    next_marker: str | None = None
    next_link: str | None = field(default=None, repr=False)

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
