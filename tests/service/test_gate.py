"""What every call passes before its handler (issue 26, cases 3 and 5): a malformed message is answered
INVALID_ARGUMENT with one warning line and no traceback, repeated ones are not logged again; anonymous
health Watch streams cannot take the places of authenticated calls."""
from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shiftaudit.client.remote import AuditClient, DataPath, RemoteError
from tests.support import QUICK
from tests.support.server_process import ServerProcess

MALFORMED = b"\x0a\xff\xff\xff\xff"  # field 1, length-delimited, with a length that never ends
SERVICE = "/shiftaudit.v1.AuditService/"


def test_a_malformed_request_is_invalid_argument_with_one_warning_and_no_traceback(roots, tmp_path):
    models, _ = roots
    srv = ServerProcess(models, tmp_path / "state").start()
    channel = grpc.insecure_channel(srv.target)
    try:
        calls = [channel.unary_unary(SERVICE + "GetAudit"), channel.unary_unary("/grpc.health.v1.Health/Check"),
                 lambda m, timeout: list(channel.unary_stream(SERVICE + "RunAudit")(m, timeout=timeout)),
                 lambda m, timeout: channel.stream_unary(SERVICE + "UploadImages")(iter([m]), timeout=timeout)]
        for call in calls:
            for _ in range(20):
                with pytest.raises(grpc.RpcError) as e:
                    call(MALFORMED, timeout=10)
                assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (call, e.value)
                assert e.value.details().startswith("malformed request: Error parsing message")
        with AuditClient(srv.target) as client:  # and the server goes on
            assert client.models()
    finally:
        channel.close()
        srv.stop()
    log = srv.log()
    malformed = [line for line in log if "malformed request" in line.get("error", "")]
    assert 4 <= len(malformed) <= 8, malformed  # one line for each kind of call, not one per call
    assert all(line["level"] == "warning" for line in malformed)
    assert not any("exception" in line or "Traceback" in line["message"] for line in log)


def test_anonymous_watch_streams_do_not_lock_out_authenticated_calls(roots, tmp_path):
    """--token-file and --max-concurrent-rpcs 8: eight Watch streams opened without a token used to take
    every place, and each authenticated call, RunAudit and health's Check answered RESOURCE_EXHAUSTED."""
    models, data = roots
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    srv = ServerProcess(models, tmp_path / "state", "--data-root", str(data), "--token-file", str(token),
                        "--max-concurrent-rpcs", "8").start()
    channel = grpc.insecure_channel(srv.target)
    stub = health_pb2_grpc.HealthStub(channel)
    watches = []
    try:
        for _ in range(8):
            watches.append(stub.Watch(health_pb2.HealthCheckRequest()))
            assert next(watches[-1]).status == health_pb2.HealthCheckResponse.SERVING
        ninth = stub.Watch(health_pb2.HealthCheckRequest())  # max_health_watches (8) from this host
        with pytest.raises(grpc.RpcError) as e:
            next(ninth)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_health_watches" in e.value.details()
        assert srv.healthy() == health_pb2.HealthCheckResponse.SERVING
        with AuditClient(srv.target, token="s3cret") as client:
            assert client.models()
            assert client.run("sub/small.onnx", images=DataPath("photos"), **QUICK)["frames"] == 24
        with AuditClient(srv.target) as anonymous, pytest.raises(RemoteError) as e:
            anonymous.models()
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    finally:
        for watch in watches:
            watch.cancel()
        channel.close()
        srv.stop()
