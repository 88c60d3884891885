"""Keyset pagination with Craton's ``limit``/``marker``/``sort_keys``/``sort_dir``.

The marker is the id of the last object of the previous page; the page
continues after that object's position in the requested order, so pages stay
stable while rows are inserted. ``id`` is always the final tie-breaker.

A page costs two queries whatever its size: the marker's sort values, then the
page (one row more than asked for, to know whether another page follows).
:func:`paginate` answers ORM objects; :func:`paginate_rows` answers the rows of
a statement that selects columns, for lists that build their answer from plain
rows (``services.inventory.host_page``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Row, Select, and_, or_, select
from sqlalchemy.orm import Session

from craton_wf.errors import InvalidInput

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    limit: int
    marker: str | None = None
    sort_keys: tuple[str, ...] = ("id",)
    sort_dir: str = "asc"


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool

    @property
    def next_marker(self) -> Any:
        if not (self.has_more and self.items):
            return None
        last = self.items[-1]
        return last["id"] if isinstance(last, dict) else getattr(last, "id", None)


def paginate(
    session: Session,
    stmt: Select[Any],
    model: type[T],
    request: PageRequest,
    allowed_sort_keys: Sequence[str],
) -> Page[T]:
    """A page of the ORM objects ``stmt`` selects."""
    page = _keyset(session, stmt, model, request, allowed_sort_keys, entities=True)
    rows = list(session.execute(page).scalars())
    return Page(items=rows[: request.limit], has_more=len(rows) > request.limit)


def paginate_rows(
    session: Session,
    stmt: Select[Any],
    model: type[Any],
    request: PageRequest,
    allowed_sort_keys: Sequence[str],
) -> Page[Row[Any]]:
    """A page of the rows of ``stmt``, which selects columns of ``model`` (its sort
    keys among them, by their names), run as Core on the session's connection."""
    page = _keyset(session, stmt, model, request, allowed_sort_keys, entities=False)
    rows = session.connection().execute(page).all()
    return Page(items=list(rows[: request.limit]), has_more=len(rows) > request.limit)


def _keyset(
    session: Session,
    stmt: Select[Any],
    model: type[Any],
    request: PageRequest,
    allowed_sort_keys: Sequence[str],
    *,
    entities: bool,
) -> Select[Any]:
    """``stmt`` ordered, after the marker, limited to one row more than the page."""
    for key in request.sort_keys:
        if key not in allowed_sort_keys:
            raise InvalidInput(
                f"cannot sort by {key!r}; sort_keys may be: {', '.join(allowed_sort_keys)}"
            )
    if request.sort_dir not in ("asc", "desc"):
        raise InvalidInput("sort_dir must be 'asc' or 'desc'")
    keys = [key for key in request.sort_keys if key != "id"] + ["id"]
    columns = [getattr(model, key) for key in keys]
    descending = request.sort_dir == "desc"

    if request.marker is not None:
        found = session.execute(stmt.where(model.id == _coerce_marker(model, request.marker)))
        marker_row = found.scalar_one_or_none() if entities else found.one_or_none()
        if marker_row is None:
            raise InvalidInput(f"marker {request.marker!r} does not name an object of this list")
        values = [getattr(marker_row, key) for key in keys]
        clauses = []
        for index, column in enumerate(columns):
            equal = [columns[i] == values[i] for i in range(index)]
            beyond = column < values[index] if descending else column > values[index]
            clauses.append(and_(*equal, beyond))
        stmt = stmt.where(or_(*clauses))

    order = [column.desc() if descending else column.asc() for column in columns]
    return stmt.order_by(*order).limit(request.limit + 1)


def _coerce_marker(model: type[Any], marker: str) -> Any:
    python_type = model.id.type.python_type
    try:
        return python_type(marker)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"marker {marker!r} is not a valid id") from exc


def scoped(model: type[Any], project_id: str) -> Select[Any]:
    """``SELECT`` of a project-owned model, limited to one project."""
    return select(model).where(model.project_id == project_id)
