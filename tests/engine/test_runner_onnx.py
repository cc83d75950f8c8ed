"""The ONNX Runtime runner on real sessions: layouts, dtypes, fixed batches, and models it refuses."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto

from shiftaudit.server.engine.runners import ModelError, open_runner
from tests.support.models import cnn, feature_map, vector_input


def test_reads_layout_size_batch_and_dtype(tmp_path):
    with open_runner(cnn(tmp_path / "a.onnx", hw=48)) as r:
        s = r.input_spec()
        assert (s.name, s.layout, s.height, s.width, s.batch, s.dtype) == ("input", "NCHW", 48, 48, None, np.float32)
        assert r.infer(np.zeros((5, 3, 48, 48), np.float32)).shape == (5, 10)
    with open_runner(cnn(tmp_path / "b.onnx", hw="H", layout="NHWC", dtype=TensorProto.FLOAT16)) as r:
        s = r.input_spec()
        assert (s.layout, s.height, s.width, s.dtype) == ("NHWC", None, None, np.float16)
        assert r.infer(np.zeros((2, 40, 40, 3), np.float16)).shape == (2, 10)


@pytest.mark.parametrize("fixed", [1, 4])
def test_fixed_batch_models_get_split_and_padded_batches(tmp_path, fixed):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3, 32, 32)).astype(np.float32)
    with open_runner(cnn(tmp_path / "dyn.onnx", hw=32)) as dyn, \
            open_runner(cnn(tmp_path / "fixed.onnx", hw=32, batch=fixed)) as fix:
        assert fix.input_spec().batch == fixed
        np.testing.assert_allclose(fix.infer(x), dyn.infer(x), rtol=1e-5, atol=1e-5)


def test_refuses_models_that_are_not_image_classifiers(tmp_path):
    with pytest.raises(ModelError, match=r"output 'out' has shape \['N', 4, 32, 32\]"):
        open_runner(feature_map(tmp_path / "fmap.onnx"))
    with pytest.raises(ModelError, match=r"expected an image batch"):
        open_runner(vector_input(tmp_path / "vec.onnx"))
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelError, match="ONNX Runtime cannot load it"):
        open_runner(bad)
    with pytest.raises(FileNotFoundError):
        open_runner(tmp_path / "missing.onnx")
    other = tmp_path / "model.pt"
    other.write_bytes(b"x")
    with pytest.raises(ModelError, match="unknown model type"):
        open_runner(other)


def test_a_requested_provider_that_did_not_load_is_an_error(tmp_path):
    """ONNX Runtime only warns when it falls back to the CPU; an audit of a GPU engine must not."""
    import onnxruntime as ort

    from shiftaudit.server.engine.runners.onnxruntime import OnnxRuntimeRunner

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has the CUDA provider")
    with pytest.raises(ModelError, match="did not enable CUDAExecutionProvider"):
        OnnxRuntimeRunner(cnn(tmp_path / "m.onnx", hw=32), ("CUDAExecutionProvider", "CPUExecutionProvider"))


@pytest.mark.parametrize("fixed", [None, 3, 4])
def test_batches_the_kernels_rendered_are_bound_where_they_lie(tmp_path, fixed):
    """I/O binding of the render buffer (here host memory, from the kernels' host build; on a GPU node
    with onnxruntime-gpu the same call binds device memory), and the copy when the engine's fixed
    batch does not match."""
    from shiftaudit.kernels.memory import HostMemory
    from shiftaudit.server.engine.files import list_images
    from shiftaudit.server.engine.images import read
    from shiftaudit.server.engine.options import AuditOptions
    from shiftaudit.server.engine.preprocessing import Preprocessing
    from shiftaudit.server.engine.protocols import plan
    from shiftaudit.server.engine.render.gpu import GpuRenderer
    from tests.support import EXAMPLE_IMAGES

    images = [read(p) for p in list_images(EXAMPLE_IMAGES)[:2]]
    options = AuditOptions(canvas=(32, 32), size=20)
    frames = [(im, f) for im in images for u in plan("embed-black", im.size, im.digest, options) for f in u.frames]
    bound = GpuRenderer(HostMemory()).render(frames, Preprocessing().normalisation(), "NCHW", np.dtype(np.float32))
    rendered = bound.to_host()
    with open_runner(cnn(tmp_path / "m.onnx", hw=32, batch=fixed or "N")) as runner:
        assert runner.memory_devices == ("cpu",)
        np.testing.assert_allclose(runner.infer(bound), runner.infer(rendered), rtol=1e-6)
