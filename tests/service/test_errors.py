"""Each failure gets the status a client can act on and a bounded message without the server's own
paths (issue 10, defects 8 and 9). One server on loopback for the module."""
from __future__ import annotations

import resource
import shutil
from pathlib import Path

import grpc
import pytest

from shiftaudit.client import AuditOptions
from shiftaudit.client.remote import AuditClient, RemoteError
from shiftaudit.v1 import audit_service_pb2 as pb
from tests.support import EXAMPLE_IMAGES, QUICK
from tests.support.models import cnn, memory_hog
from tests.support.server_process import ServerProcess, refused_start
from tests.support.tls import certificates


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    cnn(root / "small.onnx", hw=64, stride=2)
    memory_hog(root / "hog.onnx")
    (root / "alias.onnx").symlink_to(root / "small.onnx")
    return root


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    srv = ServerProcess(models, tmp_path_factory.mktemp("state")).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with AuditClient(server.target) as c:
        yield c


def _refused(call) -> RemoteError:
    with pytest.raises(RemoteError) as e:
        call()
    assert len(e.value.details) <= 1000 and "/tmp/" not in e.value.details and "/work/" not in e.value.details
    return e.value


@pytest.mark.parametrize("bad", [{"mean": (float("nan"), 0.4, 0.4)}, {"std": (float("inf"), 0.2, 0.2)},
                                 {"std": (1e-300, 0.2, 0.2)}, {"std": (-0.2, 0.2, 0.2)}])
def test_preprocessing_that_cannot_be_meant_is_refused(client, bad):
    """NaN or infinite mean/std, or a std of 1e-300, gave P(top-1 change) 0, MAC -2048 and a report that
    is not JSON, and a gate passed."""
    e = _refused(lambda: client.run("small.onnx", images=EXAMPLE_IMAGES, preprocessing=bad, **QUICK))
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT and "std" in e.details


def test_a_batch_of_zero_is_refused(client):
    request = pb.RunAuditRequest(model=pb.ModelRef(path="small.onnx"), dataset_id=client.upload(EXAMPLE_IMAGES),
                                 options=pb.AuditOptions(protocols=["crop"], size=40, batch=0))
    with pytest.raises(grpc.RpcError) as e:
        list(client.stub.RunAudit(request))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "batch" in e.value.details()


def test_a_model_name_too_long_for_the_file_system(client):
    e = _refused(lambda: client.load_model("m" * 256 + ".onnx"))
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT and "<model root>" in e.details


def test_long_inputs_are_not_echoed_whole(client):
    """A 20 kB name echoed into the error text made the status trailer too large for the client, which
    then saw RESOURCE_EXHAUSTED instead of the real error."""
    e = _refused(lambda: client.load_model("x/" * 10_000 + "m.onnx"))
    assert e.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    e = _refused(lambda: client.run("small.onnx", images=EXAMPLE_IMAGES, labels_csv="b.jpg,1\na.jpg," + "z" * 20_000,
                                    **QUICK))
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT and "neither a class index" in e.details


def test_an_engine_out_of_memory_is_resource_exhausted(client, models, tmp_path):
    """The model asks its engine for terabytes: refused before it runs under the memory budget (its
    activations are known from the graph); let through by a budget of a petabyte, the engine's failure
    to allocate is RESOURCE_EXHAUSTED too."""
    hog = dict(images=EXAMPLE_IMAGES, options=AuditOptions(size=20, protocols=("crop",)))
    e = _refused(lambda: client.run("hog.onnx", **hog))
    assert e.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "activations about" in e.details
    srv = ServerProcess(models, tmp_path / "state", "--max-audit-memory-mb", str(1 << 30)).start()
    try:
        with AuditClient(srv.target) as unbounded:
            e = _refused(lambda: unbounded.run("hog.onnx", **hog))
        assert e.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "ran out of memory" in e.details
    finally:
        srv.stop()


def test_a_link_to_a_model_lists_it_once(client):
    assert [m.path for m in client.models()] == ["hog.onnx", "small.onnx"]
    assert client.load_model("alias.onnx").path == "small.onnx"


def test_no_space_for_an_upload_is_resource_exhausted(models, tmp_path):
    """The server may not grow files beyond 1 MiB (RLIMIT_FSIZE: the kernel's answer is the one a full
    disk gives a writer, a failed write); uploading 3 MiB must say so, not INTERNAL."""
    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    srv = ServerProcess(models, tmp_path / "state", preexec_fn=small_files).start()
    try:
        images = tmp_path / "images"
        images.mkdir()
        (images / "big.png").write_bytes(bytes(3 << 20))
        with AuditClient(srv.target) as client:
            e = _refused(lambda: client.upload(images))
        assert e.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "no space left" in e.details
    finally:
        srv.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make certificates")
def test_bad_server_settings_are_refused_at_start(models, tmp_path):
    certs = certificates(tmp_path)
    err = refused_start(models, tmp_path / "s1", "--tls-cert", str(certs["server.pem"]), "--tls-key",
                        str(certs["client.key"]))
    assert "are not a certificate and its private key" in err
    assert "--grace" in refused_start(models, tmp_path / "s2", "--grace", "-1")
    assert "--max-upload-bytes" in refused_start(models, tmp_path / "s3", "--max-upload-bytes", "-5")


def test_messages_name_the_roots_whole_paths_only(tmp_path, monkeypatch):
    """A relative --state-dir 'state' must not turn '--max-state-bytes' into '--max-<state dir>-bytes', nor
    a data root /x/data turn /x/data2 into '<data root>2'."""
    from shiftaudit.server.service.errors import Errors

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    errors = Errors({Path("state"): "<state dir>", tmp_path / "data": "<data root>", None: "<unused>"})
    text = errors.message(ValueError(f"--max-state-bytes: {tmp_path}/state/uploads/a, {tmp_path}/data/b.jpg, "
                                     f"{tmp_path}/data2/c.jpg, '{'q' * 500}'"), grpc.StatusCode.INVALID_ARGUMENT)
    assert text.startswith(f"--max-state-bytes: <state dir>/uploads/a, <data root>/b.jpg, {tmp_path}/data2/c.jpg")
    assert "q" * 80 + "…'" in text and "q" * 81 not in text
    prose = "the server's " + "word " * 30 + "isn't cut"
    assert errors.message(ValueError(prose), grpc.StatusCode.INVALID_ARGUMENT) == prose
