"""How the CLI prints: rich tables, or the raw objects as JSON or YAML.

Tables go to stdout; notes, progress and errors to stderr, so ``--format
json`` output can always be piped. Cell values are wrapped in ``Text`` so a
log line or a name containing ``[brackets]`` is never read as rich markup.
When stdout is not a terminal, tables are drawn in ASCII and wide (200
columns unless ``COLUMNS`` says otherwise), so piped output is not wrapped
at 80 columns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

import yaml
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "json", "yaml")


def make_console(file: IO[str]) -> Console:
    is_tty = bool(getattr(file, "isatty", lambda: False)())
    width = None if is_tty else int(os.environ.get("COLUMNS") or 200)
    return Console(file=file, width=width, highlight=False, soft_wrap=False)


def plain(value: Any) -> dict[str, Any] | Any:
    """The JSON-able form of a value (resources become dicts)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def cell(value: Any) -> Text:
    """A value as table text: nested dicts and lists as JSON, ``None`` as blank."""
    if value is None:
        return Text("")
    if isinstance(value, Mapping | list | tuple):
        return Text(json.dumps(plain(value), sort_keys=False, default=str))
    return Text(str(value))


class Output:
    """Printing for one command run, in the format the user asked for."""

    def __init__(self, fmt: str, stdout: IO[str], stderr: IO[str]) -> None:
        self.format = fmt
        self.stdout = stdout
        self.stderr = stderr
        self.console = make_console(stdout)
        self.err = make_console(stderr)
        self.box = box.ROUNDED if self.console.is_terminal else box.ASCII

    @property
    def is_table(self) -> bool:
        return self.format == "table"

    # -- raw ------------------------------------------------------------------

    def raw(self, obj: Any) -> None:
        data = plain(obj)
        if self.format == "yaml":
            self.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        else:
            self.stdout.write(json.dumps(data, indent=2, default=str) + "\n")

    def raw_line(self, obj: Any) -> None:
        """One object of a stream: a JSON line, or a YAML document."""
        data = plain(obj)
        if self.format == "yaml":
            self.stdout.write("---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        else:
            self.stdout.write(json.dumps(data, default=str) + "\n")
        self.stdout.flush()

    # -- tables ---------------------------------------------------------------

    def table(
        self, columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str = ""
    ) -> Table:
        table = Table(box=self.box, title=title or None, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(v if isinstance(v, Table) else cell(v) for v in row))
        return table

    def show(
        self, obj: Mapping[str, Any], nested: Mapping[str, RenderableType] | None = None
    ) -> None:
        """One object: a Property/Value table (``--format json|yaml``: the raw object).

        ``nested`` replaces the value of some properties by a renderable (a table).
        """
        if not self.is_table:
            self.raw(obj)
            return
        nested = nested or {}
        rows = [(key, nested.get(key, obj[key])) for key in obj]
        self.console.print(self.table(("Property", "Value"), rows))

    def list(self, items: Sequence[Mapping[str, Any]], fields: Sequence[str] | None) -> None:
        """Several objects: one row each with the given fields (json/yaml: the objects)."""
        if not self.is_table:
            if fields:
                items = [{f: item.get(f) for f in fields} for item in items]
            self.raw(list(items))
            return
        columns = list(fields or (list(items[0]) if items else ["id"]))
        rows = [[item.get(f) for f in columns] for item in items]
        self.console.print(self.table(columns, rows))

    def mapping(self, data: Mapping[str, Any], key_header: str = "Variable") -> None:
        """A dict (e.g. variables) as a two-column table."""
        if not self.is_table:
            self.raw(dict(data))
            return
        self.console.print(self.table((key_header, "Value"), data.items()))

    def print_renderable(self, renderable: RenderableType) -> None:
        self.console.print(renderable)

    # -- text -----------------------------------------------------------------

    def text(self, line: str) -> None:
        """A line of plain text on stdout, as it is (no markup, no wrapping)."""
        self.stdout.write(line + "\n")
        self.stdout.flush()

    def note(self, message: str) -> None:
        """A line for the human on stderr."""
        self.stderr.write(message + "\n")
        self.stderr.flush()

    def error(self, message: str) -> None:
        self.note(f"ERROR: {message}")
