"""Operating the service (issue 11, in part): Prometheus metrics that Prometheus' own checker accepts;
the log is one JSON object a line, one per audit event and per error answered; a cancelled call leaves
no traceback; an open Health.Watch stream does not hold the shutdown for the grace period."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import cv2
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from shiftaudit.client import AuditOptions
from shiftaudit.client.remote import AuditClient, DataPath, RemoteError, Upload
from shiftaudit.server.service.admission import Admission, Full
from shiftaudit.server.service.metrics import Metrics
from shiftaudit.v1 import audit_service_pb2 as pb
from tests.support import QUICK, SLOW
from tests.support.server_process import ServerProcess, refused_start, wait_for
from tests.support.tls import certificates


def test_the_log_is_a_json_line_per_audit_event_and_error(roots, tmp_path):
    models, data = roots
    srv = ServerProcess(models, tmp_path / "state", "--data-root", str(data)).start()
    ids: list[str] = []
    try:
        with AuditClient(srv.target) as client:
            report = client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)
            with pytest.raises(RemoteError):
                client.run("sub/small.onnx", images=DataPath("photos"), options=AuditOptions(size=1000))
            with pytest.raises(RemoteError):  # cut by its deadline: no traceback on the server
                client.run("lite0.onnx", images=DataPath("photos"), timeout=2, on_accepted=lambda i, q: ids.append(i),
                           **SLOW)
            wait_for(lambda: any(line.get("event") == "cancelled" and line.get("audit_id") == ids[0]
                                 for line in srv.log()))
    finally:
        assert srv.stop() == 0
    log = srv.log()  # every line parses as one JSON object
    events = {(line["event"], line.get("audit_id")) for line in log if "event" in line}
    done = next(line for line in log if line.get("event") == "finished")
    assert done["frames"] == report["frames"] and done["model_sha256"] == report["model"]["sha256"]
    assert {("accepted", done["audit_id"]), ("started", done["audit_id"])} <= events
    assert ("cancelled", ids[0]) in events
    # a finished audit whose client closed the call once it had the report is not logged as cancelled
    assert {e for e in events if e[1] == done["audit_id"]} == {("accepted", done["audit_id"]),
                                                               ("started", done["audit_id"]),
                                                               ("finished", done["audit_id"])}
    assert any(line.get("event") == "error" and line["code"] == "INVALID_ARGUMENT" and "embedded size" in line["error"]
               for line in log)
    assert not any("exception" in line or "Traceback" in line["message"] for line in log)
    assert [line["event"] for line in log if line.get("event") in ("listening", "shutting_down", "stopped")] == [
        "listening", "shutting_down", "stopped"]
    listening = next(line for line in log if line.get("event") == "listening")
    assert listening["cpu_renderer"] == "cpu (compiled kernels)"  # this machine has a compiler
    assert not any(line.get("event") == "cpu_renderer_fallback" for line in log)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "audits.sqlite").write_bytes(b"")
    refused = json.loads(refused_start(models, empty))  # a start refused is one JSON line too
    assert refused["level"] == "error" and "is empty (0 bytes)" in refused["message"]


def test_an_open_health_watch_does_not_hold_the_shutdown(roots, tmp_path):
    models, _ = roots
    srv = ServerProcess(models, tmp_path / "state", "--grace", "20").start()
    channel = grpc.insecure_channel(srv.target)
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    reader = threading.Thread(target=lambda: pytest.raises(grpc.RpcError, list, watch), daemon=True)
    reader.start()
    start = time.monotonic()
    assert srv.stop(signal.SIGTERM) == 0
    assert time.monotonic() - start < 5  # not the 20 s grace: no audit needed it
    channel.close()


def _promtool() -> str | None:
    return os.environ.get("PROMTOOL") or shutil.which("promtool")


@pytest.mark.skipif(not _promtool(), reason="needs promtool (Debian's prometheus package; .ci/run fetches it)")
def test_metrics_pass_prometheus_own_checker_and_count_the_audits(roots, tmp_path):
    models, data = roots
    srv = ServerProcess(models, tmp_path / "state", "--data-root", str(data), "--metrics-listen", "127.0.0.1:0").start()
    try:
        url = srv.banner.split("metrics on ")[1].split()[0]
        with AuditClient(srv.target) as client:
            report = client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)
            with pytest.raises(RemoteError):
                client.run("sub/small.onnx", images=DataPath("photos"), options=AuditOptions(size=1000))
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    finally:
        srv.stop()
    check = subprocess.run([_promtool(), "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values['shiftaudit_audits_total{state="succeeded"}'] == 1
    assert values['shiftaudit_errors_total{code="INVALID_ARGUMENT"}'] == 1
    assert values["shiftaudit_frames_total"] == report["frames"]
    assert values['shiftaudit_stage_seconds_total{stage="infer"}'] > 0
    assert values["shiftaudit_audits_running"] == 0 and values["process_resident_memory_bytes"] > 0


def test_calls_in_progress_are_bounded(roots, tmp_path):
    """--max-concurrent-rpcs 2: two uploads held open take both places; a third call is refused at once,
    while health's Watch streams take none of them."""
    models, data = roots
    srv = ServerProcess(models, tmp_path / "state", "--max-concurrent-rpcs", "2").start()
    channel = grpc.insecure_channel(srv.target)
    release = threading.Event()
    holders: list[AuditClient] = []

    def chunks():
        yield pb.UploadImagesRequest(file_name="a.jpg", data=(data / "photos" / "coffee_cup.jpg").read_bytes())
        release.wait(30)

    try:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        next(watch)
        holders.extend(AuditClient(srv.target) for _ in range(2))
        uploads = [holder.stub.UploadImages.future(chunks()) for holder in holders]

        def full() -> bool:
            """Both uploads hold a place. The probe takes a place for an instant: an upload that arrives
            then is refused (CI once saw it, and waited 10 s for a refusal that never came); it starts
            again."""
            for k, upload in enumerate(uploads):
                if upload.done():  # only a refusal ends an upload before `release`
                    uploads[k] = holders[k].stub.UploadImages.future(chunks())
            return not _answers(srv.target)
        wait_for(full, timeout=10)
        with AuditClient(srv.target) as client, pytest.raises(RemoteError) as e:
            client.models()
        assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_concurrent_rpcs" in e.value.details
        release.set()
        for upload in uploads:
            assert upload.result(timeout=30).files == 1
        wait_for(lambda: _answers(srv.target), timeout=10)
        watch.cancel()
    finally:
        release.set()
        for holder in holders:
            holder.close()
        channel.close()
        srv.stop()


def _answers(target: str) -> bool:
    with AuditClient(target) as client:
        try:
            client.models()
            return True
        except RemoteError:
            return False


def test_the_queued_gauge_counts_the_audits_that_wait_at_most_max_queued():
    """Nine audits admitted at once (one slot, eight places to wait), none started yet: the gauge said 9
    where the docs say at most --max-queued-audits."""
    admission = Admission(concurrent=1, queued=8)
    places = [admission.admit() for _ in range(9)]
    with pytest.raises(Full):
        admission.admit()
    registry = Metrics(admission).registry
    assert registry.get_sample_value("shiftaudit_audits_queued") == 8
    for place in places:
        place.leave()
    assert registry.get_sample_value("shiftaudit_audits_queued") == 0


ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+[\w.@+-]+")


def test_every_line_the_server_writes_is_json_without_absolute_paths(roots, tmp_path):
    """19 of 1,750 lines were plain text: NumPy's RuntimeWarning with its source's absolute path (mean 1e38,
    std 1e-4), gRPC core's 'Handshake failed' for a plaintext connection to a TLS port, OpenCV's TIFF
    warning."""
    models, data = roots
    c = certificates(tmp_path)
    srv = ServerProcess(models, tmp_path / "state", "--data-root", str(data), "--tls-cert", str(c["server.pem"]),
                        "--tls-key", str(c["server.key"])).start()
    tiff = tmp_path / "tiff"
    tiff.mkdir()
    cv2.imwrite(str(tiff / "a.tif"), np.full((40, 40, 3), 128, np.uint8))
    whole = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 100, np.uint8)).save(whole, format="TIFF")  # its directory first
    (tiff / "b.tif").write_bytes(whole.getvalue()[:-2000])  # cut: libtiff complains as OpenCV reads it
    try:
        with AuditClient(srv.target) as plaintext, pytest.raises(RemoteError):  # to a TLS port
            plaintext.models()
        with AuditClient(srv.target, tls_ca=c["ca.pem"]) as client:
            for pre in ({"mean": (1e38, 1e38, 1e38), "std": (1e-4, 1e-4, 1e-4)}, {}):
                try:
                    client.run("sub/small.onnx", images=DataPath("photos"), preprocessing=pre, **QUICK)
                except RemoteError:
                    pass  # refused, or judged: what it writes is the point
            try:
                client.run("sub/small.onnx", images=Upload(tiff), **QUICK)
            except RemoteError:
                pass
    finally:
        assert srv.stop() == 0
    lines = list(srv.stderr)
    log = [json.loads(line) for line in lines]  # each line one JSON object
    assert all({"time", "level", "message"} <= line.keys() for line in log)
    sources = {line.get("source") for line in log}
    assert {"grpc", "opencv"} <= sources, [line for line in log if "event" not in line]  # handshake, TIFF
    assert any(line["message"].startswith("RuntimeWarning: overflow") and line["level"] == "warning" for line in log)
    for line in log:
        assert not ABSOLUTE_PATH.search(line["message"]), line
