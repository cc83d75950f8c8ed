"""The service on a disk that fails (issue 26, case 1): a full, read-only or erroring state directory
turns health NOT_SERVING until a write succeeds again, audits are refused at once meanwhile, and a
report that reached its client but could not be stored is said to be so. Each test mounts a small
tmpfs (and, for I/O errors, an ext4 on a loop device whose backing store runs out) and removes it;
they skip where this machine may not mount."""
from __future__ import annotations

import errno
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from shiftaudit.client import AuditOptions
from shiftaudit.client.remote import AuditClient, DataPath, RemoteError, Upload
from shiftaudit.v1 import audit_service_pb2 as pb
from tests.support import QUICK
from tests.support.server_process import ServerProcess, wait_for

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@pytest.fixture
def tmpfs(tmp_path) -> Iterator[Path]:
    """A 16 MiB tmpfs, unmounted after the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        _run("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount))
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a tmpfs here ({e}): needs root with CAP_SYS_ADMIN")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=60)


def _fill(directory: Path) -> Path:
    """A file that takes every free byte of ``directory``'s filesystem."""
    filler = directory / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(bytes(1 << 16))
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return filler


def _refused_at_once(client: AuditClient, times: int = 4) -> None:
    for _ in range(times):
        start = time.monotonic()
        with pytest.raises(RemoteError) as e:
            client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)
        assert e.value.code == grpc.StatusCode.UNAVAILABLE, e.value
        assert time.monotonic() - start < 1.0


def test_a_full_disk_turns_health_not_serving_until_space_is_freed(roots, tmpfs):
    """The disk filled while the server was idle: each audit was refused 'database or disk is full' while
    every health check said SERVING."""
    models, data = roots
    srv = ServerProcess(models, tmpfs / "state", "--data-root", str(data)).start()
    try:
        with AuditClient(srv.target) as client:
            assert client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)["frames"] == 24
            filler = _fill(tmpfs)
            wait_for(lambda: srv.healthy() == NOT_SERVING, timeout=5)
            _refused_at_once(client)
            filler.unlink()
            wait_for(lambda: srv.healthy() == SERVING, timeout=5)
            assert client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)["frames"] == 24
    finally:
        srv.stop()
    assert any(line.get("message") == "store: unusable: not serving" for line in srv.log())


def test_a_read_only_disk_turns_health_not_serving_and_uploads_unavailable(roots, tmpfs):
    """An upload to a disk that went read-only answered INTERNAL. (The uploads' folder is made read-only
    by a bind mount: a tmpfs whose files are open for writing cannot be remounted read-only as a whole.)"""
    models, data = roots
    srv = ServerProcess(models, tmpfs / "state").start()
    uploads = tmpfs / "state" / "uploads"
    try:
        with AuditClient(srv.target) as client:
            _run("mount", "--bind", str(uploads), str(uploads))
            try:
                _run("mount", "-o", "remount,bind,ro", str(uploads))
                with pytest.raises(RemoteError) as e:
                    client.upload(data / "photos")
                assert e.value.code == grpc.StatusCode.UNAVAILABLE and "Read-only file system" in e.value.details
                wait_for(lambda: srv.healthy() == NOT_SERVING, timeout=5)
                time.sleep(1.5)  # probed again meanwhile: still read-only, still not serving
                assert srv.healthy() == NOT_SERVING
            finally:
                _run("umount", str(uploads))
            wait_for(lambda: srv.healthy() == SERVING, timeout=5)
            assert client.run("sub/small.onnx", images=Upload(data / "photos"), **QUICK)["frames"] == 24
    finally:
        srv.stop()


def test_a_report_the_store_cannot_take_is_delivered_with_word_that_it_is_not_stored(roots, tmpfs, caplog):
    """The disk fills while the audit runs: the client gets its report and is told the server could not
    store it; a server stopped before it could is logged naming the audit (a restart marks it
    interrupted)."""
    models, data = roots
    srv = ServerProcess(models, tmpfs / "state", "--data-root", str(data)).start()
    ids: list[str] = []
    filled: list[Path] = []

    def fill_once_running(progress) -> None:  # and wait until the server has seen it: the audit goes on
        if not filled:
            filled.append(_fill(tmpfs))
            wait_for(lambda: srv.healthy() == NOT_SERVING, timeout=5)

    try:
        with AuditClient(srv.target) as client, caplog.at_level(logging.WARNING, "shiftaudit.client"):
            report = client.run("lite0.onnx", AuditOptions(pairs_per_image=30, protocols=("null",)),
                                images=DataPath("photos"), on_accepted=lambda i, q: ids.append(i),
                                progress=fill_once_running)
        assert report["frames"] == 360
        told = [r.getMessage() for r in caplog.records if r.name == "shiftaudit.client"]
        assert len(told) == 1 and f"could not store audit {ids[0]}'s report" in told[0], told
    finally:
        assert srv.stop() == 0
        for filler in filled:
            filler.unlink()
    lost = [line for line in srv.log() if "could not be recorded before shutdown" in line["message"]]
    assert len(lost) == 1 and ids[0] in lost[0]["message"] and lost[0]["level"] == "error"
    srv = ServerProcess(models, tmpfs / "state").start()
    try:
        with AuditClient(srv.target) as client:
            assert client.get(ids[0]).state == pb.AUDIT_STATE_INTERRUPTED
    finally:
        srv.stop()


@pytest.fixture
def failing_ext4(tmp_path) -> Iterator[Path]:
    """An ext4 of 64 MiB on a loop device whose backing file lies on a 24 MiB tmpfs: once the backing
    store is full, the device answers writes with I/O errors, as a failing disk does."""
    backing, mount = tmp_path / "backing", tmp_path / "disk"
    backing.mkdir()
    mount.mkdir()
    device = None
    try:
        _run("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(backing))
        image = backing / "ext4.img"
        _run("truncate", "-s", "64M", str(image))
        _run("mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(image))
        device = subprocess.run(["losetup", "--find", "--show", str(image)], check=True, capture_output=True,
                                text=True, timeout=60).stdout.strip()
        _run("mount", "-o", "errors=continue", device, str(mount))
    except (OSError, subprocess.CalledProcessError) as e:
        if device:
            subprocess.run(["losetup", "-d", device], capture_output=True, timeout=60)
        subprocess.run(["umount", "-l", str(backing)], capture_output=True, timeout=60)
        pytest.skip(f"cannot make a loop device with ext4 here ({e}): needs root, loop devices and mkfs.ext4")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=60)
    subprocess.run(["losetup", "-d", device], capture_output=True, timeout=60)
    subprocess.run(["umount", "-l", str(backing)], capture_output=True, timeout=60)


def test_a_disk_that_answers_io_errors_turns_health_not_serving(roots, failing_ext4):
    """The backing store runs out under the ext4: writes come back as I/O errors. Health stayed SERVING
    for 7.4 s and GetAudit answered 'database disk image is malformed'."""
    models, data = roots
    srv = ServerProcess(models, failing_ext4 / "state", "--data-root", str(data)).start()
    try:
        with AuditClient(srv.target) as client:
            assert client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)["frames"] == 24
            done = client.list()[0].audit_id
            with (failing_ext4 / "ballast").open("wb") as f:  # more than the backing store holds
                try:
                    for _ in range(40):
                        f.write(os.urandom(1 << 20))
                    os.fsync(f.fileno())
                except OSError:
                    pass
            wait_for(lambda: srv.healthy() == NOT_SERVING, timeout=5)
            _refused_at_once(client)
            try:
                row = client.get(done)  # a read may still work from the cache...
                assert row.audit_id == done
            except RemoteError as e:  # ...or fail, as the service being unavailable, not as a corrupt store
                assert e.code == grpc.StatusCode.UNAVAILABLE and "the disk may be failing" in e.details
    finally:
        srv.stop()
