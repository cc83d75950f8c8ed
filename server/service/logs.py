"""The server's log: one JSON object a line on stderr (a log shipper reads it as it is), one line per
audit event (accepted, started, finished, cancelled, failed, interrupted) and per error answered, with
the audit's id and its model's digest."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

log = logging.getLogger("shiftaudit.server")
REPEAT_WINDOW = 10.0  # seconds in which a line identical to one written is dropped
_relay: tuple[subprocess.Popen, int] | None = None  # the relay process, and the stderr it writes to


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{record.msecs:03.0f}Z",
                "level": record.levelname.lower(), "message": record.getMessage(), **getattr(record, "fields", {})}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class Repeats(logging.Filter):
    """Drops a line identical to one written less than ``window`` seconds before (everything but its
    time): a client that sends the same bad call in a loop cannot flood the log. The next such line
    written after the window carries ``repeated``, how many were dropped meanwhile."""

    def __init__(self, window: float = REPEAT_WINDOW, keys: int = 1024) -> None:
        super().__init__()
        self.window, self.keys = window, keys
        self._seen: OrderedDict[tuple, list] = OrderedDict()  # line -> [when last written, dropped since]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "fields", {})
        key = (record.name, record.levelno, record.getMessage(), json.dumps(fields, sort_keys=True, default=str))
        with self._lock:
            seen = self._seen.get(key)
            if seen and record.created - seen[0] < self.window:
                seen[1] += 1
                return False
            if seen and seen[1]:
                record.fields = {**fields, "repeated": seen[1]}
            self._seen[key] = [record.created, 0]
            self._seen.move_to_end(key)
            if len(self._seen) > self.keys:
                self._seen.popitem(last=False)
        return True


def configure(relay: bool = True) -> None:
    """Every log record of the process as a JSON line on stderr, repeats dropped; the server's own from
    INFO up. Python's warnings and a thread's uncaught exception become records too, and with ``relay``
    what C and C++ libraries write on the descriptor goes through `relay` (`close` at exit)."""
    global _relay
    if relay:
        _relay = _start_relay()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    handler.addFilter(Repeats())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    log.setLevel(logging.INFO)
    warnings.showwarning = _warning
    threading.excepthook = _uncaught
    sys.excepthook = lambda kind, value, trace: log.critical("uncaught exception", exc_info=(kind, value, trace))


def close() -> None:
    """At exit: descriptor 2 back to the process's own stderr, so that the relay reads the end of the pipe,
    writes what is left and ends (a container's init kills it when the server, its PID 1, exits)."""
    global _relay
    if _relay is None:
        return
    relay, original = _relay
    _relay = None
    sys.stderr.flush()
    os.dup2(original, 2)
    os.close(original)
    try:
        relay.wait(5)
    except subprocess.TimeoutExpired:
        relay.kill()


def _start_relay() -> tuple[subprocess.Popen, int] | None:
    """The relay process on descriptor 2 (the process's stderr kept as the second value), or None when
    it cannot start (the log is JSON from Python then, and libraries write as they do)."""
    sys.stderr.flush()
    try:
        relay = subprocess.Popen([sys.executable, "-m", "shiftaudit.server.service.relay"], stdin=subprocess.PIPE,
                                 stdout=2, close_fds=True)
    except OSError as e:
        log.warning("the log relay did not start (%s): C libraries' lines are not JSON", e)
        return None
    original = os.dup(2)
    os.dup2(relay.stdin.fileno(), 2)
    relay.stdin.close()
    return relay, original


def _warning(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning`: a record at warning level, the source named below its package root."""
    logging.getLogger("py.warnings").warning("%s: %s", category.__name__, message,
                                             extra={"fields": {"origin": f"{_below_path(filename)}:{lineno}"}})


def _below_path(filename: str) -> str:
    """A module's file relative to the sys.path entry it was imported from (no absolute path in the log)."""
    file = Path(filename)
    roots = [Path(p) for p in sys.path if p and Path(p).is_absolute() and Path(p) in file.parents]
    return str(file.relative_to(max(roots, key=lambda r: len(r.parts)))) if roots else file.name


def _uncaught(args: threading.ExceptHookArgs) -> None:
    """`threading.excepthook`: a thread's uncaught exception is an error record (a bug), not plain text."""
    if args.exc_type is SystemExit:
        return
    log.error("uncaught exception in thread %s", args.thread.name if args.thread else "?",
              exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def event(name: str, *, level: int = logging.INFO, message: str | None = None, **fields: Any) -> None:
    """One event (an audit's, an error answered, the server's own): ``event`` and the fields, in one
    line; ``message`` is for people, the event's name when not given."""
    log.log(level, message or name, extra={"fields": {"event": name, **fields}})
