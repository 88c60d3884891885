"""The engine's writes go through calls a reader can follow: no module of the
package listens on SQLAlchemy's global classes (every session, every engine,
every pool), so importing it changes nothing about any other code's database
work."""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import Connection, Engine, Pool
from sqlalchemy.orm import Session

import craton_wf


def _listeners_from_the_package(cls: type) -> list[str]:
    found = []
    for name in cls.dispatch._event_names:  # type: ignore[attr-defined]
        for owner, listeners in getattr(cls.dispatch, name)._clslevel.items():
            for listener in listeners:
                module = getattr(listener, "__module__", "") or ""
                if module.startswith("craton_wf"):
                    found.append(f"{owner.__name__}.{name}: {module}.{listener.__qualname__}")
    return found


def test_no_module_listens_on_the_global_database_classes() -> None:
    for module in pkgutil.walk_packages(craton_wf.__path__, "craton_wf."):
        if not module.name.startswith("craton_wf.migrations"):  # alembic's scripts
            importlib.import_module(module.name)
    for cls in (Session, Engine, Connection, Pool):
        assert _listeners_from_the_package(cls) == []
