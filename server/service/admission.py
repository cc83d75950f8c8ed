"""Admission: at most ``concurrent`` audits run at once and ``queued`` more wait (an audit being
prepared counts as waiting). A place is taken synchronously, before the handler does any work or
awaits anything, so a full server answers at once and simultaneous requests cannot overbook; a place
is a context manager, given back exactly once whatever ends the audit."""
from __future__ import annotations

import asyncio


class Full(Exception):
    """No place left: the message says how many run and wait."""


class Admission:
    def __init__(self, concurrent: int, queued: int) -> None:
        self.concurrent, self.capacity = concurrent, concurrent + queued
        self.slots = asyncio.Semaphore(concurrent)
        self.running = 0
        self.queued = 0

    def admit(self) -> Place:
        """A place in the queue, or `Full`."""
        if self.running + self.queued >= self.capacity:
            raise Full(f"{self.running} audits running and {self.queued} queued, the most this server takes; "
                       "retry later")
        self.queued += 1
        return Place(self)

    @property
    def waiting(self) -> int:
        """Places beyond the running slots: audits that will wait for one (at most ``queued``). An audit
        admitted while a slot is free is prepared, then runs at once: it does not wait."""
        return max(0, self.running + self.queued - self.concurrent)


class Place:
    """One audit's place: queued, then running once `start` wins a slot, then left (`leave`)."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.state = "queued"

    def __enter__(self) -> Place:
        return self

    def __exit__(self, *exc) -> None:
        self.leave()

    @property
    def position(self) -> int:
        """Audits ahead of this one that wait too (0: it runs as soon as it starts)."""
        return self.admission.waiting

    async def start(self, cancel: asyncio.Event) -> bool:
        """Wait for a slot; False (holding none, no longer queued) when ``cancel`` is set first. A slot won
        in the same moment the caller is cancelled is given back."""
        a = self.admission
        slot = asyncio.ensure_future(a.slots.acquire())
        cancelled = asyncio.ensure_future(cancel.wait())
        try:
            await asyncio.wait({slot, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():
                a.slots.release()
            raise
        finally:
            cancelled.cancel()
            if not slot.done():
                slot.cancel()
        got = slot.done() and not slot.cancelled()
        if got and cancel.is_set():
            a.slots.release()
            got = False
        a.queued -= 1
        self.state = "running" if got else "left"
        if got:
            a.running += 1
        return got

    def leave(self) -> None:
        """Give back what the place holds: its queue place, or its slot."""
        a = self.admission
        if self.state == "queued":
            a.queued -= 1
        elif self.state == "running":
            a.running -= 1
            a.slots.release()
        self.state = "left"
