"""The service under faults an operator meets: a store that cannot be written, a full server asked
for expensive work. Each test starts its own audit-server on loopback and is bounded in time."""
from __future__ import annotations

import shutil
import sqlite3
import threading
import time

import grpc
import pytest

from shiftaudit.client.remote import AuditClient, RemoteError
from tests.support import QUICK, SLOW
from tests.support.server_process import ServerProcess, wait_for


def test_a_store_failure_gives_the_audits_place_back(roots, tmp_path):
    """The state database locked by another process: the audit fails, and its place in the server is
    free again once the lock is gone (it used to stay taken until a restart)."""
    models, data = roots
    state = tmp_path / "state"
    srv = ServerProcess(models, state, "--data-root", str(data), "--max-concurrent-audits", "1",
                        "--max-queued-audits", "0").start()
    try:
        with AuditClient(srv.target) as client:
            assert client.run("sub/small.onnx", data_path="photos", **QUICK)["frames"] == 24
            lock = sqlite3.connect(state / "audits.sqlite", isolation_level=None, timeout=0)
            lock.execute("BEGIN EXCLUSIVE")
            try:
                with pytest.raises(RemoteError):
                    client.run("sub/small.onnx", data_path="photos", **QUICK)
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            assert client.run("sub/small.onnx", data_path="photos", **QUICK)["frames"] == 24
    finally:
        srv.stop()


def test_a_full_server_refuses_at_once_without_listing_images_or_loading_the_model(roots, tmp_path):
    """A request the server has no room for is refused before any work: no listing of its (large) data
    path, no model load."""
    models, data = roots
    many = tmp_path / "data"
    (many / "many").mkdir(parents=True)
    for i in range(3000):
        (many / "many" / f"{i:05d}.jpg").write_bytes(b"")
    shutil.copytree(data / "photos", many / "photos")
    srv = ServerProcess(models, tmp_path / "state", "--data-root", str(many), "--max-concurrent-audits", "1",
                        "--max-queued-audits", "0").start()
    ids: list[str] = []
    try:
        with AuditClient(srv.target) as client:
            busy = threading.Thread(target=lambda: pytest.raises(
                RemoteError, client.run, "lite0.onnx", data_path="photos", on_accepted=lambda i, q: ids.append(i),
                **SLOW))
            busy.start()
            wait_for(lambda: ids)
            start = time.monotonic()
            with pytest.raises(RemoteError) as e:
                client.run("sub/small.onnx", data_path="many", **QUICK)
            refused_in = time.monotonic() - start
            assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert not next(m for m in client.models() if m.path == "sub/small.onnx").loaded
            assert refused_in < 1.0, refused_in
            client.cancel(ids[0])
            busy.join(30)
    finally:
        srv.stop()
