"""TensorRT engines in a server's model root, without TensorRT: listed, and refused with the reason."""
from __future__ import annotations

import importlib.util
import json
import shutil

import grpc
import pytest

from shiftaudit.client.remote import AuditClient, RemoteError
from shiftaudit.server.engine.runners.manifest import SCHEMA, manifest_path
from tests.support import EXAMPLE_MODEL
from tests.support.server_process import ServerProcess


@pytest.fixture(scope="module")
def engine_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    shutil.copy(EXAMPLE_MODEL, root / "lite0.onnx")
    (root / "lite0.plan").write_bytes(b"an engine")
    changed = root / "changed.engine"
    changed.write_bytes(b"an engine")
    manifest_path(changed).write_text(json.dumps({"schema": SCHEMA, "engine_sha256": "0" * 64}))
    srv = ServerProcess(root, tmp_path_factory.mktemp("state")).start()
    yield srv
    srv.stop()


def test_the_server_lists_engines_and_says_why_one_cannot_load(engine_server):
    with AuditClient(engine_server.target) as client:
        assert sorted(m.path for m in client.models()) == ["changed.engine", "lite0.onnx", "lite0.plan"]
        with pytest.raises(RemoteError) as e:
            client.load_model("changed.engine")
        assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION and "changed since" in e.value.details
        if importlib.util.find_spec("tensorrt") is None:
            with pytest.raises(RemoteError) as e:
                client.load_model("lite0.plan")
            assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION and "pip install tensorrt" in e.value.details
