"""Everything around the TensorRT runner that runs without TensorRT (which no machine here has): engine
manifests, the audit's view of an engine's tensors and profile, batches split and padded to a
profile's range."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.runners import ModelError
from shiftaudit.server.engine.runners.manifest import (
    EngineMismatch,
    check_file,
    check_runtime,
    manifest_path,
    read_manifest,
)
from shiftaudit.server.engine.runners.onnxruntime import OnnxRuntimeRunner
from shiftaudit.server.engine.runners.tensorrt import Tensor, plan_io
from tests.support.engines import fake_engine
from tests.support.models import cnn

PATH = Path("m.plan")


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
    plan = fake_engine(tmp_path, **manifest)
    m = read_manifest(plan)
    check_file(m, plan, hashlib.sha256(plan.read_bytes()).hexdigest())
    if error is None:
        check_runtime(m, plan, installed, cc)
    else:
        with pytest.raises(EngineMismatch, match=error):
            check_runtime(m, plan, installed, cc)


def test_unreadable_manifests_are_refused(tmp_path):
    plan = fake_engine(tmp_path)
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
    (_io(dtype="INT8"), "is INT8; the audit needs float32 or float16"),
    (_io(linear=False), "vectorised format"),
    (_io((-1, 3, -1, -1), profile=((1, 3, 8, 8),) * 3), "dynamic height or width"),
    (_io(profile=None), "no optimisation profile"),
    (_io((1, 224, 224)), "expected an image batch"),
    (_io(out=(-1, 1000, 7, 7)), "outputs \\(batch, classes\\)"),
    (_io(out=(-1, -1)), "dynamic number of classes"),
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
        assert AuditOptions(size=20).resolved(ranged.input_spec()).batch == 8
        assert AuditOptions(size=20, batch=5).resolved(ranged.input_spec()).batch == 5


