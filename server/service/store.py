"""Audits kept in SQLite under the state directory, so a restart loses no finished report and
reports an audit it cut short as interrupted.

The store fails loudly, never silently:
- at start, a database that is empty (0 bytes), not a database, or corrupt is refused with what to do;
- every SQLite or disk error becomes a `StoreError` (the service answers UNAVAILABLE) and marks the store
  `failing`: from then on writes fail at once, without waiting for a lock or a disk, and health says
  NOT_SERVING, until `probe` finds that the store and its disk take a write again;
- a final state that cannot be written (the report of a finished audit) is kept and written later
  (`flush_pending`, retried by the service's store watch); meanwhile `get` answers with it.

SQLite and the disk may block (a lock another process holds, a slow disk): the service runs every
store call on the store's own thread (`call`, `post`), never on the event loop that answers health.
"""
from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from shiftaudit.server.engine.report import headline

T = TypeVar("T")
log = logging.getLogger("shiftaudit.server")

UNFINISHED = ("queued", "running")
STATES = (*UNFINISHED, "succeeded", "failed", "cancelled", "interrupted")
BUSY_MS = 500  # how long a write waits for a lock another connection holds: a refusal comes within a second
PROBE_MS = 200
RESERVE = 1 << 20  # bytes the state directory's filesystem keeps free: below, the store is failing
PROBE_BYTES = 4096  # written and synced by each probe: a disk that fails writes (EIO, read-only) is seen
WAL_KEPT = 1 << 20  # bytes the write-ahead log keeps after a checkpoint
# what ListAudits shows of a report, kept beside it (`StoredReport`)
SUMMARY_COLUMNS = ("images INTEGER NOT NULL DEFAULT 0", "images_left INTEGER NOT NULL DEFAULT 0",
                   "summary_json TEXT NOT NULL DEFAULT ''")


class StoreError(RuntimeError):
    """The audit store cannot be read or written; the message says why."""


@dataclass(frozen=True)
class AuditRow:
    audit_id: str
    state: str
    model_path: str
    created_at: float
    finished_at: float | None
    error: str
    report_json: str | None
    images: int = 0  # what a list shows of its report (`StoredReport`)
    images_left: int = 0
    summary_json: str = ""


@dataclass(frozen=True)
class StoredReport:
    """A report as the store keeps it: its text, and what a list shows of it (`report.headline`), kept
    beside it so that ListAudits reads no report."""

    text: str | None  # None: no report (a failed audit's)
    images: int = 0
    images_left: int = 0
    summary_json: str = ""

    @classmethod
    def of(cls, report: dict, text: str) -> StoredReport:
        """``report``, whose JSON is ``text``."""
        line = headline(report)
        return cls(text, line.pop("images"), line.pop("images_left"), json.dumps(line, allow_nan=False))


@dataclass(frozen=True)
class DatasetRow:
    dataset_id: str
    files: int
    bytes: int
    created_at: float
    used_at: float


class AuditStore:
    def __init__(self, path: Path, busy_ms: int = BUSY_MS, disks: tuple[Path, ...] = ()) -> None:
        """Opens (or creates) the database at ``path``; StoreError when it is there but unusable.
        ``busy_ms``: how long a write waits for a lock another connection holds; ``disks``: directories
        the server writes besides the database's (uploads), probed with it."""
        if path.exists() and path.stat().st_size == 0:
            raise StoreError(f"{path} is empty (0 bytes): the audit history it held is gone. Move it aside to start "
                             "with an empty store, or restore it from a backup")
        self.path = path
        self._lock = threading.Lock()
        self.failing: str | None = None  # why the store cannot take a write now (None: it can)
        self.on_failing: Callable[[], None] = lambda: None  # told (on any thread) when the store starts failing
        self._disks = (path.parent, *disks)
        self._pending: dict[str, tuple[str, str, StoredReport | None, float]] = {}  # final states not written yet
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shiftaudit-store")
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=busy_ms / 1000)
            self._busy_ms = busy_ms
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {check}")
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # a new store gives deleted pages back to the disk
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA journal_size_limit={WAL_KEPT}")
            self._db.execute(f"""CREATE TABLE IF NOT EXISTS audits (
                audit_id TEXT PRIMARY KEY, state TEXT NOT NULL, model_path TEXT NOT NULL,
                created_at REAL NOT NULL, finished_at REAL, error TEXT NOT NULL DEFAULT '',
                report_json TEXT, {', '.join(SUMMARY_COLUMNS)})""")
            known = {row[1] for row in self._db.execute("PRAGMA table_info(audits)")}
            for column in SUMMARY_COLUMNS:  # a store made before they were
                if column.split()[0] not in known:
                    self._db.execute(f"ALTER TABLE audits ADD COLUMN {column}")
            self._db.execute("""CREATE TABLE IF NOT EXISTS datasets (
                dataset_id TEXT PRIMARY KEY, files INTEGER NOT NULL, bytes INTEGER NOT NULL,
                created_at REAL NOT NULL, used_at REAL NOT NULL)""")
        except sqlite3.Error as e:
            raise StoreError(f"{path} is not a usable audit store ({e}). Move it aside to start with an empty "
                             "store, or restore it from a backup") from None

    @contextmanager
    def _using(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """The connection, one caller at a time; any SQLite or disk error as a StoreError, which marks the
        store failing. A write to a failing store fails at once: no caller queues behind a lock or a disk
        that the last one found failing."""
        with self._lock:
            if write and self.failing:
                raise StoreError(f"the audit store cannot take a write now ({self.failing}); retry later or on "
                                 "another node")
            try:
                yield self._db
            except (sqlite3.Error, OSError) as e:
                self._fail(e)
                raise StoreError(f"the audit store is unusable: {self.failing}") from None

    def _fail(self, e: sqlite3.Error | OSError) -> None:
        self.failing = _why(e)
        self.on_failing()

    def failed(self, e: OSError) -> None:
        """A write elsewhere under the state directory (an upload's) found its disk failing: so is the store's."""
        self._fail(e)

    def writable(self) -> None:
        """StoreError at once when the store is known to be failing (admission asks before any work)."""
        if self.failing:
            raise StoreError(f"the audit store cannot take a write now ({self.failing}); retry later or on another "
                             "node")

    def interrupt_unfinished(self) -> int:
        """At start-up: audits left queued or running by the previous process are interrupted."""
        with self._using() as db:
            cur = db.execute(
                "UPDATE audits SET state='interrupted', finished_at=?, error='the server stopped during the audit' "
                "WHERE state IN ('queued', 'running')", (time.time(),))
            return cur.rowcount

    def create(self, audit_id: str, model_path: str) -> None:
        with self._using() as db:
            db.execute("INSERT INTO audits (audit_id, state, model_path, created_at) VALUES (?, 'queued', ?, ?)",
                       (audit_id, model_path, time.time()))

    def set_state(self, audit_id: str, state: str, error: str = "", report: StoredReport | None = None,
                  finished: float | None = None) -> None:
        """Record a transition out of queued or running. A finished state is final: a client that hangs
        up on receiving the report cancels the handler after the report was stored, and that cancel must
        not turn a success into a cancellation."""
        assert state in STATES
        if finished is None and state not in UNFINISHED:
            finished = time.time()
        stored = report or StoredReport(None)
        with self._using() as db:
            db.execute("UPDATE audits SET state=?, error=?, report_json=?, finished_at=?, images=?, images_left=?, "
                       "summary_json=? WHERE audit_id=? AND state IN ('queued', 'running')",
                       (state, error, stored.text, finished, stored.images, stored.images_left, stored.summary_json,
                        audit_id))

    def keep_partial(self, audit_id: str, report: StoredReport) -> None:
        """The partial report of an audit already stored as cut short (its client gone, the server
        stopping), once its work has ended with one."""
        with self._using() as db:
            db.execute("UPDATE audits SET report_json=?, images=?, images_left=?, summary_json=? WHERE audit_id=? "
                       "AND state IN ('cancelled', 'interrupted') AND report_json IS NULL",
                       (report.text, report.images, report.images_left, report.summary_json, audit_id))

    def finish(self, audit_id: str, state: str, error: str = "", report: StoredReport | None = None) -> None:
        """`set_state` for a final state that must not be lost: when the store cannot take it now it is
        kept (and answered by `get`) until `flush_pending` writes it; the StoreError is raised all the same.
        The first final state wins, written or kept: a cancel that comes after a kept success is ignored."""
        if audit_id in self._pending:
            return
        finished = time.time()
        try:
            self.set_state(audit_id, state, error, report, finished)
        except StoreError:
            self._pending[audit_id] = (state, error, report, finished)
            raise

    def flush_pending(self) -> bool:
        """Write the final states kept by `finish`; True when none is left."""
        for audit_id, (state, error, report, finished) in list(self._pending.items()):
            try:
                self.set_state(audit_id, state, error, report, finished)
            except StoreError:
                return False
            self._pending.pop(audit_id, None)
        return True

    def probe(self) -> bool:
        """Whether the store takes a write now: its filesystem has RESERVE bytes free, a small file there
        is written and synced (a full, read-only or failing disk says no) and SQLite's write lock is had
        within PROBE_MS (a lock held elsewhere says no). Marks the store failing, or no longer."""
        with self._lock:
            try:
                self._probe_disk()
                self._db.execute(f"PRAGMA busy_timeout={PROBE_MS}")
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.execute("ROLLBACK")
                finally:
                    self._db.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            except (sqlite3.Error, OSError) as e:
                self.failing = _why(e)  # the watch that probes knows already: no need to tell it
                return False
            self.failing = None
            return True

    def _probe_disk(self) -> None:
        """OSError unless each directory the server writes has RESERVE bytes free and takes a synced write."""
        for disk in self._disks:
            st = os.statvfs(disk)
            if st.f_bavail * st.f_frsize < RESERVE:
                raise OSError(errno.ENOSPC, f"{st.f_bavail * st.f_frsize} bytes free on the state directory's disk, "
                                            f"under the {RESERVE} it keeps in reserve")
            fd, named = _probe_file(disk)
            try:
                os.write(fd, bytes(PROBE_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
                if named:
                    named.unlink(missing_ok=True)

    def get(self, audit_id: str) -> AuditRow | None:
        with self._using(write=False) as db:
            row = db.execute("SELECT * FROM audits WHERE audit_id=?", (audit_id,)).fetchone()
        if row is None:
            return None
        return self._with_pending(AuditRow(*row))

    def list(self, limit: int) -> list[AuditRow]:
        with self._using(write=False) as db:
            rows = db.execute("SELECT audit_id, state, model_path, created_at, finished_at, error, NULL, images, "
                              "images_left, summary_json FROM audits ORDER BY created_at DESC LIMIT ?",
                              (limit,)).fetchall()
        return [self._with_pending(AuditRow(*r), report=False) for r in rows]

    def delete(self, audit_id: str) -> str | None:
        """Remove a finished audit (or one whose final state is kept); its state before (None: no such
        audit; an unfinished one stays)."""
        row = self.get(audit_id)
        if row and row.state not in UNFINISHED:
            with self._using() as db:
                db.execute("DELETE FROM audits WHERE audit_id=?", (audit_id,))
            self._pending.pop(audit_id, None)
            self.compact()
        return row.state if row else None

    def delete_finished_before(self, cutoff: float) -> int:
        """Retention: finished audits older than ``cutoff`` (seconds since the epoch) are removed."""
        with self._using() as db:
            removed = db.execute("DELETE FROM audits WHERE finished_at < ? AND state NOT IN ('queued', 'running')",
                                 (cutoff,)).rowcount
        if removed:
            self.compact()
        return removed

    def add_dataset(self, dataset_id: str, files: int, size: int, created_at: float | None = None) -> None:
        now = time.time() if created_at is None else created_at
        with self._using() as db:
            db.execute("INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?, ?)", (dataset_id, files, size, now, now))

    def use_dataset(self, dataset_id: str) -> None:
        with self._using() as db:
            db.execute("UPDATE datasets SET used_at=? WHERE dataset_id=?", (time.time(), dataset_id))

    def datasets(self) -> list[DatasetRow]:
        with self._using(write=False) as db:
            rows = db.execute("SELECT * FROM datasets ORDER BY created_at DESC").fetchall()
        return [DatasetRow(*r) for r in rows]

    def remove_dataset(self, dataset_id: str) -> int | None:
        """The removed dataset's bytes; None when the store had no such dataset."""
        with self._using() as db:
            rows = db.execute("DELETE FROM datasets WHERE dataset_id=? RETURNING bytes", (dataset_id,)).fetchall()
        return rows[0][0] if rows else None

    def database_bytes(self) -> int:
        """What the database holds (the reports are in it): its pages in use — a deleted audit's are free
        at once, and reused before the file grows — and its write-ahead log and shared-memory files."""
        with self._using(write=False) as db:
            (size,), (pages,), (free,) = (db.execute(f"PRAGMA {p}").fetchone()
                                          for p in ("page_size", "page_count", "freelist_count"))
        files = (self.path.with_name(self.path.name + suffix) for suffix in ("-wal", "-shm"))
        return (pages - free) * size + sum(f.stat().st_size for f in files if f.exists())

    def compact(self) -> None:
        """After deletes, and now and then: free pages back to the disk (a store made with incremental
        vacuum) and the write-ahead log checkpointed and truncated, so that deleting gives room back."""
        with self._using() as db:
            db.execute("PRAGMA incremental_vacuum")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def state_bytes(self) -> int:
        """What the node keeps: the uploaded datasets' bytes and the database's files."""
        return sum(row.bytes for row in self.datasets()) + self.database_bytes()

    def _with_pending(self, row: AuditRow, report: bool = True) -> AuditRow:
        """The row as it will be once its kept final state is written."""
        pending = self._pending.get(row.audit_id)
        if pending is None or row.state not in UNFINISHED:
            return row
        state, error, stored, finished = pending
        stored = stored or StoredReport(None)
        return replace(row, state=state, error=error, finished_at=finished, report_json=stored.text if report else None,
                       images=stored.images, images_left=stored.images_left, summary_json=stored.summary_json)

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``method`` (one of this store's) on the store's thread, awaited; StoreError once closed."""
        try:
            future = self._thread.submit(method, *args, **kwargs)
        except RuntimeError:  # the thread was shut down: the server stops
            raise StoreError("the audit store is closed: the server stops") from None
        return await asyncio.wrap_future(future)

    def post(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """``method`` on the store's thread, not awaited: after the writes posted or called before it, and
        without holding up the caller (a cancelled handler records its end this way). A failure is logged."""
        def run() -> None:
            try:
                method(*args, **kwargs)
            except Exception as e:
                log.warning("store: %s failed: %s", method.__name__, e)
        try:
            self._thread.submit(run)
        except RuntimeError:  # closed: a handler unwinding after shutdown (its audit was marked before)
            log.warning("store: %s after the store closed, not recorded", method.__name__)

    def close(self) -> None:
        """After the writes already posted and one last try at the final states kept; those it cannot
        write are lost (a later start marks their audits interrupted; their clients were told)."""
        self._thread.shutdown(wait=True)
        if self._pending and self.probe():
            self.flush_pending()
        with self._lock:
            self._db.close()
        if self._pending:
            log.error("store: %d finished audit(s) could not be recorded before shutdown: %s (%s)", len(self._pending),
                      ", ".join(self._pending), self.failing)


def _probe_file(disk: Path) -> tuple[int, Path | None]:
    """A file to write on ``disk``'s filesystem: an unnamed one (O_TMPFILE: nothing ever appears in the
    folder, and a crash leaves nothing behind), else ``.probe`` (removed after, and by the next probe)."""
    try:
        return os.open(disk, os.O_TMPFILE | os.O_WRONLY, 0o600), None
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            raise  # read-only, no space: what the probe is for
    named = disk / ".probe"
    return os.open(named, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), named


def _why(e: sqlite3.Error | OSError) -> str:
    """What an error says of the store, for a person: a full disk as such, a read failure as maybe the disk."""
    if isinstance(e, OSError):
        return f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
    text = str(e)
    if "malformed" in text or "disk I/O error" in text:
        return f"{text}: the disk may be failing"
    return text
