"""The audit store on its own: what a state transition may and may not change."""
from __future__ import annotations

from shiftaudit.server.service.store import AuditStore


def test_a_finished_audit_keeps_its_state(tmp_path):
    store = AuditStore(tmp_path / "audits.sqlite")
    for audit_id, end in (("a", "succeeded"), ("b", "failed"), ("c", "cancelled")):
        store.create(audit_id, "m.onnx")
        store.set_state(audit_id, "running")
        store.set_state(audit_id, end, report_json="{}" if end == "succeeded" else None)
        store.set_state(audit_id, "cancelled", "client cancelled or deadline expired")
        store.set_state(audit_id, "interrupted", "the server stopped")
        row = store.get(audit_id)
        assert (row.state, row.report_json) == (end, "{}" if end == "succeeded" else None)
    assert store.interrupt_unfinished() == 0
    store.close()
