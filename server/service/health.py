"""Health follows the store: NOT_SERVING while the audit store cannot take a write (a lock another
process holds, a broken file, a full, read-only or failing disk), SERVING again once it can and the
final states it kept are written. The watch probes every ``interval`` seconds, on the store's thread,
and at once when a call finds the store failing."""
from __future__ import annotations

import asyncio
import logging

from grpc_health.v1 import health, health_pb2

from .store import AuditStore

log = logging.getLogger("shiftaudit.server")
COMPACT_EVERY = 60.0  # seconds between checkpoints of the store's write-ahead log (and after each delete)
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


async def watch_store(store: AuditStore, servicer: health.aio.HealthServicer, services: tuple[str, ...],
                      interval: float = 1.0) -> None:
    """Runs until cancelled (at shutdown, before the servicer is told the server stops). A call that finds
    the store failing wakes it at once: health turns NOT_SERVING as the store refuses writes, not up to
    ``interval`` later."""
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    store.on_failing = lambda: loop.call_soon_threadsafe(wake.set)
    serving = True
    compacted = loop.time()
    while True:
        try:
            ok = await store.call(store.probe) and await store.call(store.flush_pending)
            if ok and loop.time() - compacted > COMPACT_EVERY:
                await store.call(store.compact)
                compacted = loop.time()
        except Exception as e:  # whatever it is, the store cannot be trusted now; the watch goes on
            log.warning("store: %s", e)
            ok = False
        if ok != serving:
            serving = ok
            log.warning("store: %s", "usable again: serving" if ok else "unusable: not serving")
            for name in services:
                await servicer.set(name, SERVING if ok else NOT_SERVING)
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), interval)
        except asyncio.TimeoutError:
            pass
