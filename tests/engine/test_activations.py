"""The activations' peak a server's memory budget counts (issue 26, case 7): known from the graph before
any call, in a helper process, for the shapes a request asks for."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from shiftaudit.server.engine.runners.activations import peak_activation_bytes
from tests.support import EXAMPLE_MODEL


def test_the_peak_is_the_most_bytes_alive_at_once(tmp_path):
    """x -> conv (8 channels) -> relu -> conv (4) -> relu: while the second conv runs, the first relu's
    output and its own are alive; the first conv's output died with its last reader."""
    w1 = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w1")
    w2 = numpy_helper.from_array(np.ones((4, 8, 3, 3), np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Conv", ["b", "w2"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w1, w2])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    eight = 8 * 16 * 16 * 4  # bytes of an 8-channel 16x16 float tensor, one frame
    assert peak_activation_bytes(path, (1, 3, 16, 16)) == 2 * eight  # a and b, then b and c (c: half as big)
    assert peak_activation_bytes(path, (5, 3, 16, 16)) == 5 * 2 * eight
    assert peak_activation_bytes(path, (1, 3, 32, 32)) == 4 * 2 * eight


def test_the_example_models_peak_grows_with_the_batch():
    one, many = (peak_activation_bytes(EXAMPLE_MODEL, (n, 3, 224, 224)) for n in (1, 32))
    assert one is not None and many == 32 * one
    assert 5 << 20 < one < 20 << 20  # EfficientNet-Lite0 at 224: 9.2 MiB alive at most
