"""The audits a server runs now: their places (admission), their threads, how each is told to stop, and
their work in progress, kept in one place so that CancelAudit and the shutdown reach every audit however
far it got. Audits, and the preparation of audits (listing images, loading models), have threads of
their own: however many run, the default pool stays free for the control plane (ListModels, metadata...).
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .admission import Admission, Place
from .catalog import Lease
from .errors import Conflict, NotFound
from .limits import ServerLimits
from .room import Room
from .store import AuditRow, AuditStore

T = TypeVar("T")


class Holds:
    """What one RunAudit holds: its place, its model lease, its hold on a dataset. Given back once, when
    the handler has ended and its work too (a handler may end while its worker thread still runs: a
    client gone in the middle of a send closes the handler without waiting)."""

    def __init__(self, place: Place, release_dataset: Callable[[], None]) -> None:
        self.place, self.release_dataset = place, release_dataset
        self.lease: Lease | None = None  # set by the preparation thread
        self.reserved: tuple[Room, int] | None = None  # room promised to the report, until it is stored
        self.work: asyncio.Future | None = None  # the preparation, then the audit's worker

    def give_back(self) -> None:
        if self.work is not None and not self.work.done():
            self.work.add_done_callback(self._work_ended)
        else:
            self._release()

    def _work_ended(self, work: asyncio.Future) -> None:
        """The work of a handler that ended first: its outcome (a Cancelled, most often) is nobody's to
        report any more; reading it keeps asyncio from logging it as never retrieved."""
        if not work.cancelled():
            work.exception()
        self._release()

    def _release(self) -> None:
        if self.lease:
            self.lease.release()
        if self.reserved:
            room, size = self.reserved
            room.give_back(size)
        self.place.leave()
        self.release_dataset()


class Audits:
    """Audits queued and running: at most the ``limits``' concurrent ones run, their queued ones wait."""

    def __init__(self, store: AuditStore, limits: ServerLimits) -> None:
        self.store = store
        self.admission = Admission(limits.max_concurrent_audits, limits.max_queued_audits)
        self._audits = ThreadPoolExecutor(limits.max_concurrent_audits, thread_name_prefix="shiftaudit-audit")
        self._preparing = ThreadPoolExecutor(max(2, limits.max_concurrent_audits),
                                             thread_name_prefix="shiftaudit-prepare")
        self._stops: dict[str, tuple[threading.Event, asyncio.Event]] = {}  # the worker's, the queue's
        self._workers: set[asyncio.Future] = set()  # audits' work in progress (awaited at shutdown)
        self.shutting_down = False  # audits cut short from then on are interrupted, not cancelled

    def prepare(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn`` on a preparation thread."""
        return asyncio.get_running_loop().run_in_executor(self._preparing, fn, *args)

    def work(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """An audit's work, ``fn``, on an audit thread; awaited by `drain` at shutdown."""
        worker = asyncio.get_running_loop().run_in_executor(self._audits, fn)
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)
        return worker

    def track(self, audit_id: str, stop: threading.Event, cancel: asyncio.Event) -> None:
        """From when the audit is stored until its handler ends: `cancel` and `stop_all` set ``stop`` (its
        worker stops at its next batch) and ``cancel`` (it leaves the queue)."""
        self._stops[audit_id] = (stop, cancel)

    def untrack(self, audit_id: str) -> None:
        self._stops.pop(audit_id, None)

    async def cancel(self, audit_id: str) -> AuditRow:
        """CancelAudit: tell a queued or running audit to stop; its row as it is now. NotFound for no such
        audit, Conflict for one that is no longer queued or running."""
        row = await self.store.call(self.store.get, audit_id)
        if row is None:
            raise NotFound(f"no audit {audit_id!r}")
        events = self._stops.get(audit_id)
        if events is None:
            raise Conflict(f"audit {audit_id} is {row.state}, not queued or running")
        for event in events:
            event.set()
        return row

    def stop_all(self) -> None:
        """At shutdown, after the grace period: stop every audit still queued or running and store it as
        interrupted (their streams are already cut; their handlers may not get to run again)."""
        for audit_id, (stop, cancel) in list(self._stops.items()):
            stop.set()
            cancel.set()
            self.store.post(self.store.finish, audit_id, "interrupted", "the server stopped")
        self._preparing.shutdown(wait=False, cancel_futures=True)
        self._audits.shutdown(wait=False, cancel_futures=True)

    async def idle(self, timeout: float, uploads: Callable[[], int]) -> None:
        """At shutdown: wait (at most ``timeout`` seconds) until no audit is queued or running and no
        upload in progress; nothing else (an open Health.Watch stream) needs the grace period."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (self.admission.running or self.admission.queued or uploads()) and loop.time() < end:
            await asyncio.sleep(0.05)

    async def drain(self, timeout: float) -> None:
        """At shutdown, after `stop_all`: wait (at most ``timeout`` seconds) for the audits' work to end
        (each stops at its next batch), so no model closes under an engine call."""
        if self._workers:
            await asyncio.wait(set(self._workers), timeout=timeout)
