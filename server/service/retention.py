"""Retention: finished audits older than ``days`` and uploaded datasets unused for as long are removed,
so the state directory does not grow without end (``audit-server --retain-days``; 0 keeps them until
DeleteAudit/DeleteDataset). A dataset a queued or running audit uses is never removed."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection

from .datasets import Datasets
from .store import AuditStore, StoreError

log = logging.getLogger("shiftaudit.server")


async def sweep(store: AuditStore, datasets: Datasets, days: float, in_use: Callable[[], Collection[str]]) -> None:
    """Once: what is older than ``days`` goes."""
    cutoff = time.time() - days * 86400
    removed = await store.call(store.delete_finished_before, cutoff)
    for row in await store.call(store.datasets):
        if row.used_at < cutoff and row.dataset_id not in in_use():
            try:
                await asyncio.to_thread(datasets.delete, row.dataset_id)
            except FileNotFoundError:
                pass  # gone already: only its row is left
            await store.call(store.remove_dataset, row.dataset_id)
            removed += 1
    if removed:
        log.warning("retention: removed %d audit(s) and dataset(s) older than %g days", removed, days)


async def keep_for(store: AuditStore, datasets: Datasets, days: float, in_use: Callable[[], Collection[str]]) -> None:
    """Sweeps now and then every quarter of ``days`` (at most hourly), until cancelled."""
    while True:
        try:
            await sweep(store, datasets, days, in_use)
        except (StoreError, OSError) as e:  # the next sweep tries again; the store's watch reports the store
            log.warning("retention: %s", e)
        await asyncio.sleep(min(3600.0, days * 86400 / 4))
