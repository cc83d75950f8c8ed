"""Everything around the TensorRT runner that runs without TensorRT (which no machine here has): the
clear error when it is missing, engine manifests, the audit's view of an engine's tensors and
profile, batches split and padded to a profile's range, and engines in the server's model root."""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest

from conftest import EXAMPLE_IMAGES, EXAMPLE_MODEL
from models import cnn
from server_process import ServerProcess
from shiftaudit.client.cli import main
from shiftaudit.client.remote import AuditClient, RemoteError
from shiftaudit.server.engine import make_config
from shiftaudit.server.runners import ModelError
from shiftaudit.server.runners.manifest import (SCHEMA, EngineMismatch, check_file, check_runtime, manifest_path,
                                                read_manifest)
from shiftaudit.server.runners.onnxruntime import OnnxRuntimeRunner
from shiftaudit.server.runners.tensorrt import Tensor, plan_io

no_tensorrt = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")
PATH = Path("m.plan")


def _engine(tmp_path: Path, **manifest) -> Path:
    """An engine file (bytes TensorRT would refuse; nothing here deserialises them) and its manifest."""
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"not a real engine")
    if manifest is not None:
        data = {"schema": SCHEMA, "engine_sha256": hashlib.sha256(plan.read_bytes()).hexdigest(),
                "tensorrt": "10.13.0.35", "compute_capability": "9.0", "gpu": "NVIDIA H100", **manifest}
        manifest_path(plan).write_text(json.dumps(data))
    return plan


@no_tensorrt
def test_an_engine_without_tensorrt_exits_3_saying_what_to_install(tmp_path, capsys):
    code = main(["--engine", str(_engine(tmp_path)), "--images", str(EXAMPLE_IMAGES), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3 and "TensorRT is not installed" in err and "pip install tensorrt" in err
    assert main(["build-engine", str(EXAMPLE_MODEL), "-o", str(tmp_path / "b.plan")]) == 3
    assert "pip install tensorrt" in capsys.readouterr().err


def test_a_changed_engine_is_refused_before_tensorrt_is_even_needed(tmp_path, capsys):
    plan = _engine(tmp_path)
    plan.write_bytes(b"another engine")
    code = main(["--engine", str(plan), "--images", str(EXAMPLE_IMAGES), "--no-progress"])
    assert code == 3 and "changed since its manifest was written" in capsys.readouterr().err
    assert main(["inspect", str(plan)]) == 3


def test_inspect_shows_the_manifest_then_what_this_node_lacks(tmp_path, capsys):
    code = main(["inspect", str(_engine(tmp_path))])
    out, err = capsys.readouterr()
    assert '"tensorrt": "10.13.0.35"' in out
    if importlib.util.find_spec("tensorrt") is None:
        assert code == 3 and "TensorRT is not installed" in err
    missing = tmp_path / "none"
    missing.mkdir()
    (missing / "x.plan").write_bytes(b"x")
    assert main(["inspect", str(missing / "x.plan")]) == 3 and "no manifest" in capsys.readouterr().err


@pytest.mark.parametrize("installed,cc,manifest,error", [
    ("10.13.0.35", (9, 0), {}, None),
    ("10.13.0.40", (9, 0), {}, None),  # the build number does not matter
    ("10.13.1.1", (9, 0), {}, "built with TensorRT 10.13.0.35, this node has 10.13.1.1"),
    ("10.14.0.1", (9, 0), {"version_compatible": True}, None),
    ("10.12.0.1", (9, 0), {"version_compatible": True}, "or later"),
    ("11.0.0.1", (9, 0), {"version_compatible": True}, "TensorRT 10.x"),
    ("10.13.0.35", (8, 9), {}, "compute capability 9.0, this one is 8.9"),
    ("10.13.0.35", (8, 0), {"hardware_compatibility": "AMPERE_PLUS"}, None),
    ("10.13.0.35", (7, 5), {"hardware_compatibility": "AMPERE_PLUS"}, "8.0 or later"),
    ("10.2.0.post1", (9, 0), {"tensorrt": "10.2.0"}, None),
])
def test_manifest_says_which_tensorrt_and_gpu_run_an_engine(tmp_path, installed, cc, manifest, error):
    plan = _engine(tmp_path, **manifest)
    m = read_manifest(plan)
    check_file(m, plan, hashlib.sha256(plan.read_bytes()).hexdigest())
    if error is None:
        check_runtime(m, plan, installed, cc)
    else:
        with pytest.raises(EngineMismatch, match=error):
            check_runtime(m, plan, installed, cc)


def test_unreadable_manifests_are_refused(tmp_path):
    plan = _engine(tmp_path)
    manifest_path(plan).write_text("{not json")
    with pytest.raises(EngineMismatch, match="unreadable manifest"):
        read_manifest(plan)
    manifest_path(plan).write_text('{"schema": "something/else"}')
    with pytest.raises(EngineMismatch, match="not a shiftaudit.engine-manifest/v1"):
        read_manifest(plan)


def _io(shape=(-1, 3, 224, 224), dtype="FLOAT", profile=((1, 3, 224, 224), (32, 3, 224, 224), (32, 3, 224, 224)),
        out=(-1, 1000), **extra) -> list[Tensor]:
    return [Tensor("images", True, shape, dtype, profile, **extra), Tensor("logits", False, out, "FLOAT")]


def test_plan_io_reads_layout_dtype_and_the_profiles_batch_range():
    spec, out = plan_io(_io(), PATH)
    assert (spec.layout, spec.height, spec.width, spec.dtype, spec.batch) == ("NCHW", 224, 224, np.float32, None)
    assert spec.batch_range() == (1, 32) and out.name == "logits"
    spec, _ = plan_io(_io((8, 160, 160, 3), "HALF", None), PATH)
    assert (spec.layout, spec.height, spec.dtype, spec.batch_range()) == ("NHWC", 160, np.float16, (8, 8))


@pytest.mark.parametrize("tensors,error", [
    (_io(dtype="INT8"), "is INT8; the audit needs FLOAT or HALF"),
    (_io(linear=False), "vectorised format"),
    (_io((-1, 3, -1, -1), profile=((1, 3, 8, 8),) * 3), "dynamic height or width"),
    (_io(profile=None), "no optimisation profile"),
    (_io((1, 224, 224)), "expected \\[N, 3, H, W\\]"),
    (_io(out=(-1, 1000, 7, 7)), "outputs \\(batch, classes\\)"),
    (_io() + [Tensor("mask", True, (1, 1), "FLOAT")], "2 inputs"),
])
def test_plan_io_refuses_engines_the_audit_cannot_feed(tensors, error):
    with pytest.raises(ModelError, match=error):
        plan_io(tensors, PATH)


class ProfiledRunner(OnnxRuntimeRunner):
    """A real ONNX Runtime session whose input spec carries a TensorRT-like profile range (4..8), to
    check the splitting and padding a TensorRT runner gets from the base class."""

    calls: list[int]

    def input_spec(self):
        return dataclasses.replace(super().input_spec(), min_batch=4, max_batch=8)

    def _run(self, batch):
        self.calls.append(len(batch))
        return super()._run(batch)


def test_batches_follow_the_profiles_range_and_the_audit_batch_defaults_to_its_max(tmp_path):
    x = np.random.default_rng(0).normal(size=(19, 3, 32, 32)).astype(np.float32)
    with OnnxRuntimeRunner(cnn(tmp_path / "m.onnx", hw=32)) as plain, ProfiledRunner(tmp_path / "m.onnx") as ranged:
        ranged.calls = []
        np.testing.assert_allclose(ranged.infer(x), plain.infer(x), rtol=1e-5, atol=1e-6)
        assert ranged.calls == [8, 8, 4]  # 19 = 8 + 8 + 3, the last padded up to the profile's least
        assert make_config(ranged, {"size": 20}, None, None, False).batch == 8
        assert make_config(ranged, {"size": 20}, None, 5, False).batch == 5


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
