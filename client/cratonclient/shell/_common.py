"""What the command modules share: the context, argument helpers, list printing.

A command is a function ``command(ctx, args) -> int | None`` registered on an
argparse sub-parser with ``set_defaults(func=command)``; ``None`` means 0.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._client import Client
from .._managers import Manager
from ..exceptions import ClientError
from ._output import FORMATS, Output

#: Largest ``limit`` the server accepts for one page.
MAX_PAGE = 1000


class CommandError(ClientError):
    """The command cannot run as given."""


@dataclass
class Context:
    client: Client
    out: Output


Command = Callable[[Context, argparse.Namespace], "int | None"]


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    func: Command,
    help: str,
) -> argparse.ArgumentParser:
    """A sub-command that also accepts ``--format`` after its name."""
    parser = subparsers.add_parser(name, help=help, description=help)
    parser.add_argument(
        "--format",
        choices=FORMATS,
        type=format_name,
        default=argparse.SUPPRESS,
        help="output format (overrides the global --format)",
    )
    parser.set_defaults(func=func)
    return parser


# -- key=value arguments -------------------------------------------------------


def parse_value(text: str) -> Any:
    """JSON if it parses (``3``, ``true``, ``[1,2]``, ``{"a":1}``), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_key_values(items: Iterable[str] | None, option: str = "variable") -> dict[str, Any]:
    """``["k=v", "n=3"]`` → ``{"k": "v", "n": 3}``."""
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"Bad {option} {item!r}: expected KEY=VALUE.")
        result[key] = parse_value(value)
    return result


def check_vars_filters(items: Iterable[str] | None) -> list[str] | None:
    """``--vars path:value`` filters, checked for their colon."""
    if not items:
        return None
    for item in items:
        if ":" not in item:
            raise CommandError(f"Bad --vars filter {item!r}: expected PATH:VALUE.")
    return list(items)


def id_or_name_param(value: str | None, id_key: str, name_key: str) -> dict[str, str]:
    """A list filter naming an object: ``region_id=3`` for an id, ``region=r1`` for a name."""
    if value is None:
        return {}
    return {id_key: value} if value.isdigit() else {name_key: value}


# -- list commands -------------------------------------------------------------


def add_fields_option(parser: argparse.ArgumentParser, default: Sequence[str]) -> None:
    parser.add_argument(
        "--fields",
        nargs="+",
        metavar="FIELD",
        help=f"fields to show, space or comma separated (default: {' '.join(default)})",
    )
    parser.set_defaults(default_fields=list(default))


def format_name(text: str) -> str:
    """An output format; ``default`` is Craton's CLI's name of the table."""
    return "table" if text == "default" else text


def add_list_options(parser: argparse.ArgumentParser, default_fields: Sequence[str]) -> None:
    add_fields_option(parser, default_fields)
    # Craton's CLI's --detail: accepted so that its users' scripts run; lists
    # here carry every field already (choose them with --fields).
    parser.add_argument("--detail", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sort-key", metavar="KEY", help="field(s) to sort by, comma separated")
    parser.add_argument("--sort-dir", choices=("asc", "desc"), help="sort direction")
    paging = parser.add_mutually_exclusive_group()
    paging.add_argument("--limit", type=positive_int, metavar="N", help="show at most N objects")
    paging.add_argument("--all", action="store_true", help="follow all pages")
    parser.add_argument("--marker", metavar="ID", help="start after the object with this id")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``90s``, ``5m``, ``1h``, ``1h30m``, ``2d`` (a number is seconds)."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if not text or "".join(n + u for n, u in parts) != text:
                raise ValueError(
                    f"not a duration: {value!r} (e.g. 90, 90s, 5m, 1h, 1h30m)"
                ) from None
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"a duration must be positive: {value!r}")
    return seconds


def duration_seconds(text: str) -> int:
    """An argparse type: a positive duration (``90s``, ``5m``, ``1h``) as whole seconds."""
    try:
        return max(1, round(parse_duration(text)))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def selected_fields(args: argparse.Namespace) -> list[str] | None:
    """The ``--fields`` given, commas split; ``None`` if the option was not given."""
    if not getattr(args, "fields", None):
        return None
    fields = [f.strip() for item in args.fields for f in item.split(",")]
    return [f for f in fields if f]


def fields_to_show(
    args: argparse.Namespace, items: Sequence[Mapping[str, Any]], table: bool
) -> list[str] | None:
    """The columns: ``--fields`` (checked against the objects), else the command's defaults
    in a table and every field in JSON/YAML."""
    fields = selected_fields(args)
    if fields is None:
        if not table:
            return None
        defaults = list(getattr(args, "default_fields", []) or [])
        if items:
            known = {k for item in items for k in item}
            defaults = [f for f in defaults if f in known] or list(items[0])
        return defaults
    if items:
        known = {k for item in items for k in item}
        unknown = [f for f in fields if f not in known]
        if unknown:
            raise CommandError(
                f"Unknown field(s): {', '.join(unknown)}. Available: {', '.join(sorted(known))}."
            )
    return fields


#: How a command shows one object in a table (JSON and YAML print it as it came).
Readable = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def print_items(
    ctx: Context,
    args: argparse.Namespace,
    items: Sequence[Mapping[str, Any]],
    readable: Readable | None = None,
) -> None:
    if readable is not None and ctx.out.is_table:
        items = [readable(item) for item in items]
    ctx.out.list(items, fields_to_show(args, items, ctx.out.is_table))


def list_command(
    ctx: Context,
    args: argparse.Namespace,
    manager: Manager,
    filters: Mapping[str, Any],
    readable: Readable | None = None,
) -> None:
    """Fetch as ``--all/--limit/--marker`` say, and print (each row as ``readable`` says)."""
    sort = {"sort_keys": args.sort_key, "sort_dir": args.sort_dir}
    filters = {k: v for k, v in filters.items() if v is not None}
    next_marker = None
    if args.all:
        items = manager.list(marker=args.marker, **sort, **filters)
    elif args.limit:
        items, marker = [], args.marker
        while len(items) < args.limit:
            page = manager.list_page(
                limit=min(args.limit - len(items), MAX_PAGE), marker=marker, **sort, **filters
            )
            items.extend(page.items)
            marker = next_marker = page.next_marker
            if marker is None or not page.items:
                break
    else:
        page = manager.list_page(marker=args.marker, **sort, **filters)
        items, next_marker = page.items, page.next_marker
    print_items(ctx, args, items, readable)
    if next_marker is not None:
        ctx.out.note(f"(more {manager.noun}s: use --all, or --marker {next_marker})")
