"""Every line the server writes on standard error as one JSON object, whoever writes it.

Python's records are JSON already (`logs.JsonLines`), but libraries in C and C++ write to the file
descriptor itself: gRPC core ("Handshake failed" for every plaintext or bad-certificate connection to a
TLS port), OpenCV (a TIFF warning), ONNX Runtime. The server's descriptor 2 is therefore a pipe to this
small process, which passes JSON lines through and writes any other line as a JSON record: level,
message, and where it came from (``source``: the library, ``origin``: its file and line), absolute
paths cut to their last part, repeats dropped as in the server's own log. A separate process, not a
thread: what a crashing server wrote last (an abort's message) still comes out.

Run as ``python -m shiftaudit.server.service.relay`` by `logs.configure`; it ignores SIGINT and SIGTERM
(a Ctrl-C reaches the whole process group) and ends when the server's end of the pipe closes.
"""
from __future__ import annotations

import json
import logging
import re
import signal
import sys

from .logs import JsonLines, Repeats

ANSI = re.compile(r"\x1b\[[0-9;]*m")
ABSOLUTE = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+([\w.@+-]+)")  # /a/b/c.cpp -> c.cpp
LEVELS = {"I": logging.INFO, "W": logging.WARNING, "E": logging.ERROR, "F": logging.CRITICAL, "V": logging.DEBUG,
          "INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR, "FATAL": logging.CRITICAL,
          "DEBUG": logging.DEBUG, "VERBOSE": logging.DEBUG}
FORMATS = (  # (source, pattern with groups level, origin, message)
    ("grpc", re.compile(r"^(?P<level>[IWEF])\d{4} [\d:.]+\s+\d+ (?P<origin>[^\s\]]+:\d+)\] (?P<message>.*)$")),
    ("onnxruntime", re.compile(r"^[\d-]+ [\d:.]+ \[(?P<level>[VIWEF]):onnxruntime:[^,]*, (?P<origin>[^\s\]]+:\d+)"
                               r"[^\]]*\] (?P<message>.*)$")),
    ("opencv", re.compile(r"^\[\s*(?P<level>INFO|WARN|ERROR|FATAL|DEBUG|VERBOSE)[^\]]*\]\s*(?:global\s+)?"
                          r"(?P<origin>\S+?(?: \(\d+\))?) (?P<message>.*)$")),
)


def record(line: str) -> logging.LogRecord:
    """A line some library wrote, as a log record: its level, message and origin where its format is
    known, a warning from "native" code where it is not."""
    line = ANSI.sub("", line).strip()
    source, level, origin, message = "native", logging.WARNING, None, line
    for name, pattern in FORMATS:
        if m := pattern.match(line):
            source, level, message = name, LEVELS[m["level"]], m["message"]
            origin = ABSOLUTE.sub(r"\1", m["origin"]).replace(" (", ":").rstrip(")")
            break
    rec = logging.LogRecord(source, level, "", 0, ABSOLUTE.sub(r"\1", message), None, None)
    rec.fields = {"source": source, **({"origin": origin} if origin else {})}
    return rec


def relay(lines, out) -> None:
    """JSON objects through as they are; any other line as a record (formatted by `JsonLines`)."""
    formatter, repeats = JsonLines(), Repeats()
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        if line.startswith("{"):
            try:
                json.loads(line)
                out.write(line + "\n")
                out.flush()
                continue
            except ValueError:
                pass
        rec = record(line)
        if repeats.filter(rec):
            out.write(formatter.format(rec) + "\n")
            out.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    relay(open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False), sys.stdout)


if __name__ == "__main__":
    main()
