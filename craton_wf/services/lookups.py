"""Lookups shared by the services: project-scoped get, name-or-id references."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Integer, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from craton_wf.errors import Conflict, InvalidInput, NotFound

T = TypeVar("T")

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,254}$")


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(
            f"invalid {what} name {name!r}: start with a letter or digit, then letters, digits, "
            "'.', '_', ':', '@' or '-' (at most 255)"
        )
    return name


def id_in_range(model: Any, key: Any) -> bool:
    """Whether ``key`` fits ``model``'s integer id column: one past it names nothing
    (and the database would refuse to compare it)."""
    column_type = model.id.type
    if not isinstance(column_type, Integer) or not isinstance(key, int):
        return True
    bound = 2**63 if isinstance(column_type, BigInteger) else 2**31
    return -bound <= key < bound


def get_owned(session: Session, model: type[T], project_id: str, object_id: Any, what: str) -> T:
    """The object of that id in the project, or NotFound (also for other projects')."""
    column_type = model.id.type  # type: ignore[attr-defined]
    try:
        key = column_type.python_type(object_id)
    except (TypeError, ValueError):
        raise NotFound(f"{what} {object_id} not found") from None
    if not id_in_range(model, key):
        raise NotFound(f"{what} {object_id} not found")
    obj = session.get(model, key)
    if obj is None or getattr(obj, "project_id", project_id) != project_id:
        raise NotFound(f"{what} {object_id} not found")
    return obj


def find_by_ref(
    session: Session, model: type[T], project_id: str, ref: Any, what: str, **scope: Any
) -> T:
    """Resolve a reference that is an id or a name (unique within ``scope``)."""
    if isinstance(ref, int) or (isinstance(ref, str) and (ref.isascii() and ref.isdigit())):
        obj = get_owned(session, model, project_id, int(ref), what)
        for key, value in scope.items():
            if value is not None and getattr(obj, key) != value:
                raise NotFound(f"{what} {ref} not found")
        return obj
    if not isinstance(ref, str) or not ref:
        raise InvalidInput(f"{what} must be given by id or name")
    stmt = select(model).where(model.project_id == project_id, model.name == ref)  # type: ignore[attr-defined]
    for key, value in scope.items():
        if value is not None:
            stmt = stmt.where(getattr(model, key) == value)
    matches = list(session.execute(stmt.limit(2)).scalars())
    if not matches:
        raise NotFound(f"{what} {ref!r} not found")
    if len(matches) > 1:
        raise InvalidInput(f"more than one {what} is named {ref!r}: use its id")
    return matches[0]


def flush_unique(session: Session, what: str, name: str) -> None:
    """Flush, turning a unique-constraint violation into a clear 409."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a {what} named {name!r} already exists") from exc
