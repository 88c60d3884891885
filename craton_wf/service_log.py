"""The service's own log: its format, and the loggers ``--log-level`` governs.

``text`` is one human line per record; ``json`` is one JSON object per line
(``ts``, ``level``, ``logger``, ``message``, and ``exc`` with a traceback),
for a log collector. Uvicorn's loggers, its access log among them, propagate
to the same root handler, so ``--log-level`` decides for all of them: the
access log (one INFO line per request) shows at INFO and DEBUG, not at
WARNING. State changes of builds, jobs and runs are logged at INFO by the
modules that make them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, fmt: str = "text") -> None:
    """The root handler on stderr, in ``fmt``; uvicorn's loggers go through it."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)  # the root's level decides
