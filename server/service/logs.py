"""The server's log: one JSON object a line on stderr (a log shipper reads it as it is), one line per
audit event (accepted, started, finished, cancelled, failed, interrupted) and per error answered, with
the audit's id and its model's digest."""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

log = logging.getLogger("shiftaudit.server")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{record.msecs:03.0f}Z",
                "level": record.levelname.lower(), "message": record.getMessage(), **getattr(record, "fields", {})}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure() -> None:
    """Every log record of the process as a JSON line on stderr; the server's own from INFO up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    log.setLevel(logging.INFO)


def event(name: str, *, level: int = logging.INFO, message: str | None = None, **fields: Any) -> None:
    """One event (an audit's, an error answered, the server's own): ``event`` and the fields, in one
    line; ``message`` is for people, the event's name when not given."""
    log.log(level, message or name, extra={"fields": {"event": name, **fields}})
