"""Server-Sent Events, read from a streamed answer: the follow streams of logs and events.

The server answers ``follow=true`` with ``text/event-stream`` when asked:
``id:``, ``event:`` and one ``data:`` line of JSON per event, comments
(``: keep-alive``) while it is quiet, and a last ``end`` event when the job or
build is finished. A stream that stops without its ``end`` was cut (a server
restart, a proxy, the network); it is opened again with the ``Last-Event-ID``
header set to the last id received, and the server goes on with exactly the
events after it.

A server that answers NDJSON instead (one JSON object a line, the last
``{"end": true, ...}``) is read into the same events, so callers see one
shape. The parser is the few lines the format needs (the WHATWG rules for
``id``, ``event``, ``data`` and comments); ``retry:`` is the browser's
business and ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from . import exceptions


@dataclass(frozen=True)
class StreamEvent:
    """One event of a follow stream: ``line``, ``event``, ``end`` or ``error``."""

    event: str
    data: dict[str, Any]
    id: int | None = None


def parse_sse(lines: Iterable[str]) -> Iterator[StreamEvent]:
    """The events of an SSE body given line by line (without their line ends)."""
    event, data, last_id = "message", list[str](), None
    for line in lines:
        if not line:
            if data:
                yield StreamEvent(event, _json_data("\n".join(data)), last_id)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and value.isdigit():
            last_id = int(value)
    # Lines left without their blank line: the stream was cut mid-event, which is no event.


def parse_ndjson(lines: Iterable[str]) -> Iterator[StreamEvent]:
    """The objects of an NDJSON body as events: ``end`` for the last, else ``line``."""
    for line in lines:
        if not line.strip():
            continue
        value = _json_data(line)
        if value.get("end") is True:
            yield StreamEvent("end", {k: v for k, v in value.items() if k != "end"})
        else:
            ident = value.get("id", value.get("seq"))
            yield StreamEvent("line", value, ident if isinstance(ident, int) else None)


def follow_items(events: Iterable[StreamEvent]) -> Iterator[dict[str, Any]]:
    """Each event's data, the end's as ``{"end": true, ...}``, the shape the managers'
    ``follow`` streams yield; nothing is read after the end."""
    for event in events:
        if event.event == "end":
            yield {"end": True, **event.data}
            return
        yield event.data


def _json_data(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise exceptions.ClientError(
            f"Bad line in the server's stream: {exceptions.truncate(text)}"
        ) from exc
    return value if isinstance(value, dict) else {"line": value}
