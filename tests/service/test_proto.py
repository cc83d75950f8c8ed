"""The committed API modules are what the committed .proto files generate."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT


def test_generated_modules_match_the_proto(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (the test extra) regenerates the modules")
    subprocess.run([sys.executable, ROOT / "proto" / "generate.py", "--out", tmp_path], check=True)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.py*"))
    assert generated, "protoc generated nothing"
    for rel in generated:
        committed = ROOT / "proto" / rel
        assert committed.exists(), f"{rel} is generated but not committed: run python proto/generate.py"
        assert committed.read_text() == (tmp_path / rel).read_text(), \
            f"{rel} differs from what the .proto generates: run python proto/generate.py"


def test_proto_follows_buf_standard_naming():
    """The parts of buf's STANDARD rules that a reader can check without buf: versioned package,
    Request/Response per RPC, enum zero values _UNSPECIFIED and prefixed values."""
    from shiftaudit.v1 import audit_service_pb2 as pb

    assert pb.DESCRIPTOR.package == "shiftaudit.v1"
    for method in pb.DESCRIPTOR.services_by_name["AuditService"].methods:
        assert method.input_type.name == f"{method.name}Request"
        assert method.output_type.name == f"{method.name}Response"
    for enum in pb.DESCRIPTOR.enum_types_by_name.values():
        prefix = "".join("_" + c if c.isupper() else c.upper() for c in enum.name).lstrip("_")
        assert enum.values[0].name == f"{prefix}_UNSPECIFIED" and enum.values[0].number == 0
        assert all(v.name.startswith(prefix + "_") for v in enum.values)
