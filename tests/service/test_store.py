"""The audit store on its own: what a state transition may and may not change."""
from __future__ import annotations

import sqlite3

import pytest

from shiftaudit.server.service.store import AuditStore, StoredReport, StoreError

REPORT = StoredReport("{}")


def test_a_finished_audit_keeps_its_state(tmp_path):
    store = AuditStore(tmp_path / "audits.sqlite")
    for audit_id, end in (("a", "succeeded"), ("b", "failed"), ("c", "cancelled")):
        store.create(audit_id, "m.onnx")
        store.set_state(audit_id, "running")
        store.set_state(audit_id, end, report=REPORT if end == "succeeded" else None)
        store.set_state(audit_id, "cancelled", "client cancelled or deadline expired")
        store.set_state(audit_id, "interrupted", "the server stopped")
        row = store.get(audit_id)
        assert (row.state, row.report_json) == (end, "{}" if end == "succeeded" else None)
    assert store.interrupt_unfinished() == 0
    store.close()


def test_a_success_kept_for_later_is_not_overwritten_by_a_later_cancel(tmp_path):
    """The store locked when the report comes: the success is kept; the cancel of a client that hung up
    meanwhile must not replace it, and once the lock is gone the success is what is stored."""
    store = AuditStore(tmp_path / "audits.sqlite", busy_ms=50)
    store.create("a", "m.onnx")
    store.set_state("a", "running")
    lock = sqlite3.connect(tmp_path / "audits.sqlite", isolation_level=None, timeout=0)
    lock.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreError):
        store.finish("a", "succeeded", report=REPORT)
    store.finish("a", "cancelled", "client cancelled or deadline expired")  # kept already: ignored
    assert (store.get("a").state, store.get("a").report_json) == ("succeeded", "{}")  # answered meanwhile
    assert not store.probe() and not store.flush_pending()
    lock.execute("ROLLBACK")
    assert store.probe() and store.flush_pending()
    assert (store.get("a").state, store.get("a").report_json) == ("succeeded", "{}")
    assert store.delete("a") == "succeeded" and store.get("a") is None
    store.close()
