"""Audits kept in SQLite under the state directory, so a restart loses no finished report and
reports an audit it cut short as interrupted."""
from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

UNFINISHED = ("queued", "running")
STATES = (*UNFINISHED, "succeeded", "failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class AuditRow:
    audit_id: str
    state: str
    model_path: str
    created_at: float
    finished_at: float | None
    error: str
    report_json: str | None


class AuditStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._closed = False
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("""CREATE TABLE IF NOT EXISTS audits (
                audit_id TEXT PRIMARY KEY, state TEXT NOT NULL, model_path TEXT NOT NULL,
                created_at REAL NOT NULL, finished_at REAL, error TEXT NOT NULL DEFAULT '',
                report_json TEXT)""")

    def interrupt_unfinished(self) -> int:
        """At start-up: audits left queued or running by the previous process are interrupted."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE audits SET state='interrupted', finished_at=?, error='the server stopped during the audit' "
                "WHERE state IN ('queued', 'running')", (time.time(),))
            return cur.rowcount

    def create(self, audit_id: str, model_path: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO audits (audit_id, state, model_path, created_at) VALUES (?, 'queued', ?, ?)",
                             (audit_id, model_path, time.time()))

    def set_state(self, audit_id: str, state: str, error: str = "", report_json: str | None = None) -> None:
        """Record a transition out of queued or running. A finished state is final: a client that hangs
        up on receiving the report cancels the handler after the report was stored, and that cancel must
        not turn a success into a cancellation. After close (a handler still unwinding at shutdown) it
        is ignored."""
        assert state in STATES
        finished = time.time() if state not in UNFINISHED else None
        with self._lock:
            if self._closed:
                return
            self._db.execute("UPDATE audits SET state=?, error=?, report_json=?, finished_at=? "
                             "WHERE audit_id=? AND state IN ('queued', 'running')",
                             (state, error, report_json, finished, audit_id))

    def get(self, audit_id: str) -> AuditRow | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM audits WHERE audit_id=?", (audit_id,)).fetchone()
        return AuditRow(*row) if row else None

    def list(self, limit: int) -> list[AuditRow]:
        with self._lock:
            rows = self._db.execute("SELECT audit_id, state, model_path, created_at, finished_at, error, NULL "
                                    "FROM audits ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
        return [AuditRow(*r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()
