"""Variable resolution and the ``vars=path:value`` filter, as Craton defines them.

A host's variables resolve host → parent host(s) → cell → region → cloud →
project: per top-level key, the first scope that defines it wins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from craton_wf.errors import InvalidInput

_MISSING = object()


def resolve_variables(scopes: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Merge scopes given most specific first; the first scope defining a key wins."""
    resolved: dict[str, Any] = {}
    for scope in scopes:
        for key, value in (scope or {}).items():
            resolved.setdefault(key, value)
    return resolved


def resolve_with_sources(
    scopes: Iterable[tuple[str, Mapping[str, Any] | None]],
) -> dict[str, list[tuple[str, Any]]]:
    """Per key, every ``(scope, value)`` defining it, most specific first: the first
    is the value :func:`resolve_variables` gives, the others are what it hides.
    ``scopes`` are ``(name, variables)`` pairs, most specific first."""
    found: dict[str, list[tuple[str, Any]]] = {}
    for name, variables in scopes:
        for key, value in (variables or {}).items():
            found.setdefault(key, []).append((name, value))
    return dict(sorted(found.items()))


def parse_vars_filter(expression: str) -> tuple[list[str], Any]:
    """Split ``a.b.c:value`` into a path and a value (JSON if it parses, else the string)."""
    path, sep, raw = expression.partition(":")
    if not sep or not path.strip():
        raise InvalidInput(f"vars filter {expression!r} must look like path:value")
    keys = [part for part in path.strip().split(".")]
    if any(not key for key in keys):
        raise InvalidInput(f"vars filter {expression!r} has an empty path segment")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return keys, value


# A comma that starts another ``path:value``: Craton's clients join several
# filters in one ``vars`` (``a:1,b.c:2``); a comma inside a JSON value does not
# start one (``a:[1,2]``).
_NEXT_FILTER = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_.-]*:)")


def parse_vars_filters(expressions: Iterable[str]) -> list[tuple[list[str], Any]]:
    """Every filter of the ``vars`` query parameters, each one or several joined by commas."""
    return [
        parse_vars_filter(part)
        for expression in expressions
        for part in _NEXT_FILTER.split(expression)
    ]


def lookup_path(variables: Mapping[str, Any], keys: list[str]) -> Any:
    current: Any = variables
    for key in keys:
        if isinstance(current, Mapping) and key in current:
            current = current[key]
        elif (
            isinstance(current, list)
            and (key.isascii() and key.isdigit())
            and int(key) < len(current)
        ):
            current = current[int(key)]
        else:
            return _MISSING
    return current


def matches_vars(variables: Mapping[str, Any], filters: list[tuple[list[str], Any]]) -> bool:
    """True when every ``(path, value)`` filter matches the variables."""
    for keys, expected in filters:
        found = lookup_path(variables, keys)
        if found is _MISSING:
            return False
        if found != expected and str(found) != str(expected):
            return False
    return True
