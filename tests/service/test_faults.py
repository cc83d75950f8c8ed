"""The service under faults an operator meets: a store that cannot be written, a full server asked
for expensive work. Each test starts its own audit-server on loopback and is bounded in time."""
from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shiftaudit.client import AuditOptions
from shiftaudit.client.remote import AuditClient, DataPath, Dataset, RemoteError
from shiftaudit.v1 import audit_service_pb2 as pb
from tests.support import EXAMPLE_IMAGES, QUICK, SLOW
from tests.support.server_process import ServerProcess, ends_interrupted, refused_start, wait_for


def test_a_store_failure_gives_the_audits_place_back(roots, tmp_path):
    """The state database locked by another process: the audit fails, and its place in the server is
    free again once the lock is gone (it used to stay taken until a restart)."""
    models, data = roots
    state = tmp_path / "state"
    srv = ServerProcess(models, state, "--data-root", str(data), "--max-concurrent-audits", "1",
                        "--max-queued-audits", "0").start()
    try:
        with AuditClient(srv.target) as client:
            assert client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)["frames"] == 24
            lock = sqlite3.connect(state / "audits.sqlite", isolation_level=None, timeout=0)
            lock.execute("BEGIN EXCLUSIVE")
            try:
                with pytest.raises(RemoteError):
                    client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            wait_for(lambda: _audits(client), timeout=10)  # refused as unavailable until probed, never as full
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
            busy = threading.Thread(target=lambda: ends_interrupted(lambda: client.run(
                "lite0.onnx", images=DataPath("photos"), on_accepted=lambda i, q: ids.append(i), **SLOW)))
            busy.start()
            wait_for(lambda: ids)
            start = time.monotonic()
            with pytest.raises(RemoteError) as e:
                client.run("sub/small.onnx", images=DataPath("many"), **QUICK)
            refused_in = time.monotonic() - start
            assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert not next(m for m in client.models() if m.path == "sub/small.onnx").loaded
            assert refused_in < 1.0, refused_in
            client.cancel(ids[0])
            busy.join(30)
    finally:
        srv.stop()


def _latencies(call, seconds: float, every: float = 0.05) -> list[float]:
    """Seconds each ``call()`` took, called every ``every`` seconds for ``seconds``."""
    out: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        call()
        out.append(time.monotonic() - start)
        time.sleep(every)
    return out


def _health(target: str):
    """A health check over one kept channel (a new channel a check would measure its own handshake)."""
    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(target))
    return lambda: stub.Check(health_pb2.HealthCheckRequest(), timeout=5)


def test_health_answers_at_once_while_the_store_is_locked(roots, tmp_path):
    """The event loop never waits for SQLite: with the database locked by another process and an audit
    waiting to be recorded, health checks still answer in milliseconds."""
    models, data = roots
    state = tmp_path / "state"
    srv = ServerProcess(models, state, "--data-root", str(data)).start()
    outcome: list = []
    try:
        with AuditClient(srv.target) as client:  # warm: the model open, its memory estimated
            client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)
        lock = sqlite3.connect(state / "audits.sqlite", isolation_level=None, timeout=0)
        lock.execute("BEGIN EXCLUSIVE")
        with AuditClient(srv.target) as client:
            def run() -> None:  # recorded once the lock is gone, or failed by the store's timeout
                try:
                    outcome.append(client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)["frames"])
                except RemoteError as e:
                    outcome.append(e.code)
            waiting = threading.Thread(target=run)
            waiting.start()
            time.sleep(0.5)  # the audit is prepared and waits for the store
            latencies = _latencies(_health(srv.target), 3.0)
            lock.execute("ROLLBACK")
            lock.close()
            waiting.join(30)
        assert max(latencies) < 0.1, sorted(latencies)[-5:]
        assert len(outcome) == 1
    finally:
        srv.stop()


def test_audits_run_on_threads_of_their_own(roots, tmp_path):
    """Eight audits at once on two cores: all eight run, and the control plane (ListModels) keeps
    answering (audits used to take every thread of the default pool: two waited and ListModels
    blocked)."""
    models, data = roots
    srv = ServerProcess(models, tmp_path / "state", "--data-root", str(data), "--max-concurrent-audits", "8").start()
    started: dict[str, int] = {}
    long = AuditOptions(pairs_per_image=2000, size=40, protocols=("embed-black",))
    try:
        with AuditClient(srv.target) as client:
            def run() -> None:
                ids: list[str] = []
                try:
                    client.run("sub/small.onnx", long, images=DataPath("photos"), on_accepted=lambda i, q: ids.append(i),
                               progress=lambda p: started.setdefault(ids[0], p.frames))
                except RemoteError:
                    pass  # cancelled below
            threads = [threading.Thread(target=run) for _ in range(8)]
            for t in threads:
                t.start()
            wait_for(lambda: len(started) == 8, timeout=30)
            latencies = _latencies(lambda: client.models(), 2.0, every=0.2)
            for audit in client.list():
                if audit.state in (pb.AUDIT_STATE_QUEUED, pb.AUDIT_STATE_RUNNING):
                    client.cancel(audit.audit_id)
            for t in threads:
                t.join(30)
        assert max(latencies) < 2.0, latencies
    finally:
        srv.stop()


def test_health_answers_within_100_ms_while_audits_run(roots, tmp_path):
    """p99 of health checks over one channel while two audits run on this machine's two cores."""
    models, data = roots
    srv = ServerProcess(models, tmp_path / "state", "--data-root", str(data), "--max-concurrent-audits", "2").start()
    ids: list[str] = []
    long = AuditOptions(pairs_per_image=2000, protocols=("embed-black",))
    try:
        with AuditClient(srv.target) as client:
            threads = [threading.Thread(target=lambda: ends_interrupted(lambda: client.run(
                "lite0.onnx", long, images=DataPath("photos"), on_accepted=lambda i, q: ids.append(i))))
                for _ in range(2)]
            for t in threads:
                t.start()
            wait_for(lambda: len(ids) == 2 and all(client.get(i).state == pb.AUDIT_STATE_RUNNING for i in ids))
            health = sorted(_latencies(_health(srv.target), 4.0, every=0.02))
            for audit_id in ids:
                client.cancel(audit_id)
            for t in threads:
                t.join(30)
        assert health[int(0.99 * len(health))] < 0.1, health[-5:]
    finally:
        srv.stop()


def test_an_upload_cut_short_is_never_a_dataset(roots, tmp_path):
    """The server killed in the middle of an upload: after the restart nothing of it is left, and no
    half-written dataset can be audited as if it were complete."""
    models, data = roots
    state = tmp_path / "state"
    srv = ServerProcess(models, state).start()
    sent = threading.Event()

    def chunks():
        yield pb.UploadImagesRequest(file_name="a.jpg", data=(data / "photos" / "coffee_cup.jpg").read_bytes())
        sent.set()
        time.sleep(30)  # the server is killed meanwhile

    with AuditClient(srv.target) as client:
        upload = threading.Thread(target=lambda: pytest.raises(grpc.RpcError, client.stub.UploadImages, chunks()))
        upload.start()
        sent.wait(10)
        wait_for(lambda: any(p.is_file() for p in (state / "uploads").rglob("*")))
        cut = [p.name for p in (state / "uploads").iterdir()]
        srv.stop(signal.SIGKILL)
        upload.join(40)
    srv = ServerProcess(models, state).start()
    try:
        assert list((state / "uploads").iterdir()) == []
        with AuditClient(srv.target) as client:
            for name in cut:
                with pytest.raises(RemoteError) as e:
                    client.run("sub/small.onnx", images=Dataset(name), **QUICK)
                assert e.value.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
    finally:
        srv.stop()


def test_a_second_server_on_the_same_state_dir_refuses_to_start(roots, tmp_path):
    """A rolling deploy on a shared volume: the second server would have marked the first one's audits
    interrupted; it refuses instead and names the holder."""
    models, _ = roots
    first = ServerProcess(models, tmp_path / "state").start()
    try:
        err = refused_start(models, tmp_path / "state")
        assert "is in use by audit-server pid" in err and str(first.proc.pid) in err
        first.healthy()
    finally:
        first.stop()
    ServerProcess(models, tmp_path / "state").start().stop()  # free again once the holder exits


def test_an_empty_or_corrupt_store_is_refused_at_start(roots, tmp_path):
    """The audit history is never replaced by an empty store without a word."""
    models, _ = roots
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "audits.sqlite").write_bytes(b"")
    assert "is empty (0 bytes)" in refused_start(models, empty)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "audits.sqlite").write_bytes(b"not a database, but a file someone wrote over it" * 100)
    assert "not a usable audit store" in refused_start(models, junk)
    broken = tmp_path / "broken"
    srv = ServerProcess(models, broken).start()
    with AuditClient(srv.target) as client:
        for _ in range(3):
            client.run("sub/small.onnx", images=EXAMPLE_IMAGES, **QUICK)
    srv.stop()
    db = sqlite3.connect(broken / "audits.sqlite")
    root, page = db.execute("SELECT rootpage FROM sqlite_master WHERE name='audits'").fetchone()[0], \
        db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray((broken / "audits.sqlite").read_bytes())
    data[(root - 1) * page:root * page] = bytes(page)  # the table's root page zeroed
    (broken / "audits.sqlite").write_bytes(bytes(data))
    assert "not a usable audit store" in refused_start(models, broken)


def test_a_locked_store_answers_unavailable_and_health_follows_it(roots, tmp_path):
    models, data = roots
    state = tmp_path / "state"
    srv = ServerProcess(models, state, "--data-root", str(data)).start()
    try:
        with AuditClient(srv.target) as client:
            client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)
            done = client.list()[0].audit_id
        lock = sqlite3.connect(state / "audits.sqlite", isolation_level=None, timeout=0)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            wait_for(lambda: srv.healthy() == health_pb2.HealthCheckResponse.NOT_SERVING, timeout=10)
            with AuditClient(srv.target) as client:
                for call in (lambda: client.run("sub/small.onnx", images=DataPath("photos"), **QUICK),
                             lambda: client.delete(done)):
                    with pytest.raises(RemoteError) as e:
                        call()
                    assert e.value.code == grpc.StatusCode.UNAVAILABLE and "audit store" in e.value.details
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        wait_for(lambda: srv.healthy() == health_pb2.HealthCheckResponse.SERVING, timeout=10)
    finally:
        srv.stop()


def test_a_report_that_cannot_be_stored_is_delivered_and_stored_later(roots, tmp_path):
    """The store locked while the audit runs: the client still gets its report, the audit is not left
    running, and once the lock is gone the stored report is the one delivered."""
    models, data = roots
    state = tmp_path / "state"
    srv = ServerProcess(models, state, "--data-root", str(data)).start()
    lock = sqlite3.connect(state / "audits.sqlite", isolation_level=None, timeout=0)
    ids: list[str] = []

    def lock_once_running(progress) -> None:
        if not lock.in_transaction:
            lock.execute("BEGIN EXCLUSIVE")

    try:
        with AuditClient(srv.target) as client:
            report = client.run("lite0.onnx", AuditOptions(pairs_per_image=4, protocols=("null",)),
                                images=DataPath("photos"), on_accepted=lambda i, q: ids.append(i),
                                progress=lock_once_running)
            assert report["frames"] == 48
            lock.execute("ROLLBACK")
            stored = wait_for(lambda: (a := client.get(ids[0])).state == pb.AUDIT_STATE_SUCCEEDED and a)
            assert json.loads(stored.report_json) == report
    finally:
        if lock.in_transaction:
            lock.execute("ROLLBACK")
        lock.close()
        srv.stop()


def test_refusals_under_a_locked_store_come_within_a_second_and_do_not_queue(roots, tmp_path):
    """Each RunAudit refused under a store lock held its place for 5-10 s on the store's single thread
    (four at once: 10.3 / 15.3 / 20.3 / 25.3 s), so that refusals filled the queue."""
    models, data = roots
    state = tmp_path / "state"
    srv = ServerProcess(models, state, "--data-root", str(data)).start()
    outcomes: list[tuple[grpc.StatusCode, float]] = []
    try:
        with AuditClient(srv.target) as client:
            client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)  # warm: what a refusal takes is
            # the store's, not the model's opening or the first estimate of its memory (a helper's start)
            lock = sqlite3.connect(state / "audits.sqlite", isolation_level=None, timeout=0)
            lock.execute("BEGIN EXCLUSIVE")
            try:
                def run() -> None:
                    start = time.monotonic()
                    try:
                        client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)
                    except RemoteError as e:
                        outcomes.append((e.code, time.monotonic() - start))
                threads = [threading.Thread(target=run) for _ in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            wait_for(lambda: srv.healthy() == health_pb2.HealthCheckResponse.SERVING, timeout=10)
            wait_for(lambda: _audits(client), timeout=10)
    finally:
        srv.stop()
    assert [code for code, _ in outcomes] == [grpc.StatusCode.UNAVAILABLE] * 4
    assert max(seconds for _, seconds in outcomes) < 1.0, outcomes


def _audits(client: AuditClient) -> bool:
    """Whether an audit runs now (False: refused as unavailable, the store not yet probed again)."""
    try:
        return client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)["frames"] == 24
    except RemoteError as e:
        assert e.code == grpc.StatusCode.UNAVAILABLE, e
        return False
