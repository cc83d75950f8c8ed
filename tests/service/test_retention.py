"""Nothing is kept forever (issue 10, defect 7): audits and datasets can be deleted, are removed after
--retain-days, and uploads are bounded in files and bytes, each and in total."""
from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

from shiftaudit.client.remote import AuditClient, DataPath, Dataset, RemoteError
from shiftaudit.v1 import audit_service_pb2 as pb
from tests.support import EXAMPLE_IMAGES, QUICK, SLOW
from tests.support.server_process import ServerProcess, ends_interrupted, wait_for


def _code(call) -> grpc.StatusCode:
    with pytest.raises(RemoteError) as e:
        call()
    return e.value.code


def test_audits_and_datasets_are_listed_and_deleted(roots, tmp_path):
    models, _ = roots
    srv = ServerProcess(models, tmp_path / "state").start()
    ids: list[str] = []
    try:
        with AuditClient(srv.target) as client:
            dataset = client.upload(EXAMPLE_IMAGES)
            (listed,) = client.datasets()
            assert (listed.dataset_id, listed.files) == (dataset, 6)
            assert listed.bytes == sum(p.stat().st_size for p in EXAMPLE_IMAGES.iterdir())
            client.run("sub/small.onnx", images=Dataset(dataset), **QUICK)
            done = client.list()[0].audit_id
            busy = threading.Thread(target=lambda: ends_interrupted(lambda: client.run(
                "lite0.onnx", images=Dataset(dataset), on_accepted=lambda i, q: ids.append(i), **SLOW)))
            busy.start()
            wait_for(lambda: ids)
            assert _code(lambda: client.delete_dataset(dataset)) == grpc.StatusCode.FAILED_PRECONDITION
            assert _code(lambda: client.delete(ids[0])) == grpc.StatusCode.FAILED_PRECONDITION
            client.cancel(ids[0])
            busy.join(30)
            client.delete(done)
            assert _code(lambda: client.get(done)) == grpc.StatusCode.NOT_FOUND
            assert _code(lambda: client.delete(done)) == grpc.StatusCode.NOT_FOUND
            wait_for(lambda: client.get(ids[0]).state == pb.AUDIT_STATE_CANCELLED)
            client.delete_dataset(dataset)
            assert client.datasets() == []
            assert _code(lambda: client.run("sub/small.onnx", images=Dataset(dataset), **QUICK)) == grpc.StatusCode.NOT_FOUND
            assert not (tmp_path / "state" / "uploads" / dataset).exists()
    finally:
        srv.stop()


def test_old_audits_and_unused_datasets_are_removed(roots, tmp_path):
    """--retain-days 0.00005 (4.3 s): both go, without a request."""
    models, _ = roots
    srv = ServerProcess(models, tmp_path / "state", "--retain-days", "0.00005").start()
    try:
        with AuditClient(srv.target) as client:
            client.run("sub/small.onnx", images=EXAMPLE_IMAGES, **QUICK)
            assert client.list() and client.datasets()
            wait_for(lambda: not client.list() and not client.datasets(), timeout=20)
            # the row goes first (no audit may take the dataset meanwhile), then its files, on a thread
            wait_for(lambda: list((tmp_path / "state" / "uploads").iterdir()) == [], timeout=5)
            assert client.server_info().retain_days == 0.00005
    finally:
        srv.stop()


def test_uploads_are_bounded_in_files_and_in_what_the_node_keeps(roots, tmp_path):
    models, _ = roots
    srv = ServerProcess(models, tmp_path / "state", "--max-upload-files", "4", "--max-state-bytes", "600000").start()
    try:
        with AuditClient(srv.target) as client:
            with pytest.raises(RemoteError) as e:
                client.upload(EXAMPLE_IMAGES)  # six files
            assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "upload of more than 4 files, this server's max_upload_files" in e.value.details
            assert "--" not in e.value.details  # the limit's name: the caller never typed the server's flags
            few = tmp_path / "few"
            few.mkdir()
            for name in ("coffee_cup.jpg", "cat_chelsea.jpg"):
                (few / name).write_bytes((EXAMPLE_IMAGES / name).read_bytes())
            kept = client.upload(few)  # ~170 kB
            with pytest.raises(RemoteError) as e:
                for _ in range(4):
                    client.upload(few)
            assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "would take it over its max_state_bytes of 600000" in e.value.details
            info = client.server_info()
            assert info.state_bytes <= info.max_state_bytes == 600000
            client.delete_dataset(kept)  # room again
            client.upload(few)
    finally:
        srv.stop()


def _on_disk(state: Path) -> int:
    return sum(f.stat().st_size for f in state.rglob("*") if f.is_file() and f.name != "state.lock")


def test_the_state_cap_holds_for_reports_and_deleting_gives_room_back(roots, tmp_path):
    """Reports were not capped (30 audits reached 1.26 MB against a 300,000-byte cap), and deleting every
    audit raised state_bytes (the write-ahead log grew): an upload stayed refused until a restart."""
    models, data = roots
    state = tmp_path / "state"
    cap = 400_000
    srv = ServerProcess(models, state, "--data-root", str(data), "--max-state-bytes", str(cap)).start()
    try:
        with AuditClient(srv.target) as client:
            for _ in range(40):
                try:
                    client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)
                except RemoteError as e:
                    assert e.code == grpc.StatusCode.RESOURCE_EXHAUSTED, e
                    assert "this audit's report (up to" in e.details and f"max_state_bytes of {cap}" in e.details
                    break
                assert client.server_info().state_bytes <= cap and _on_disk(state) <= cap
            else:
                pytest.fail("40 audits and never refused: reports are not capped")
            stored = client.list()
            assert len(stored) >= 3
            full = client.server_info().state_bytes
            for audit in stored:
                client.delete(audit.audit_id)
            assert client.server_info().state_bytes < full - 20_000 * len(stored) // 2  # given back at once
            assert _on_disk(state) <= cap
            assert client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)["frames"] == 24
    finally:
        srv.stop()
