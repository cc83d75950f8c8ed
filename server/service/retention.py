"""Retention: finished audits older than ``days`` and uploaded datasets unused for as long are removed,
so the state directory does not grow without end (the server's ``retain_days``; 0 keeps them until
DeleteAudit/DeleteDataset). A dataset a queued or running audit uses is never removed: `Datasets.delete`
refuses it."""
from __future__ import annotations

import asyncio
import logging
import time

from .datasets import Datasets
from .store import AuditStore

log = logging.getLogger("shiftaudit.server")


async def sweep(store: AuditStore, days: float, datasets: Datasets) -> None:
    """Once: what is older than ``days`` goes, but a dataset that an audit uses."""
    cutoff = time.time() - days * 86400
    removed = await store.call(store.delete_finished_before, cutoff)
    for row in await store.call(store.datasets):
        if row.used_at < cutoff:
            try:
                await datasets.delete(row.dataset_id)
                removed += 1
            except Exception as e:  # in use, or gone meanwhile: the next sweep sees
                log.info("retention: dataset %s stays: %s", row.dataset_id, e)
    if removed:
        log.warning("retention: removed %d audit(s) and dataset(s) older than %g days", removed, days)


async def keep_for(store: AuditStore, days: float, datasets: Datasets) -> None:
    """Sweeps now and then every quarter of ``days`` (at most hourly), until cancelled."""
    while True:
        try:
            await sweep(store, days, datasets)
        except Exception as e:  # the next sweep tries again; the store's watch reports the store
            log.warning("retention: %s", e)
        await asyncio.sleep(min(3600.0, days * 86400 / 4))
