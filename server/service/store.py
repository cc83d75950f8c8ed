"""Audits kept in SQLite under the state directory, so a restart loses no finished report and
reports an audit it cut short as interrupted. SQLite and the disk may block (a lock another process
holds, a slow disk): the service runs every store call on the store's own thread (`call`, `post`),
never on the event loop that answers health checks."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("shiftaudit.server")

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
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shiftaudit-store")
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

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``method`` (one of this store's) on the store's thread, awaited."""
        return await asyncio.wrap_future(self._thread.submit(method, *args, **kwargs))

    def post(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """``method`` on the store's thread, not awaited: after the writes posted or called before it, and
        without holding up the caller (a cancelled handler records its end this way). A failure is logged."""
        def run() -> None:
            try:
                method(*args, **kwargs)
            except Exception as e:
                log.warning("store: %s failed: %s", method.__name__, e)
        self._thread.submit(run)

    def close(self) -> None:
        """After the writes already posted."""
        self._thread.shutdown(wait=True)
        with self._lock:
            self._closed = True
            self._db.close()
