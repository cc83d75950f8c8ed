"""Small ONNX models built in the tests, so every runner path runs on a real ONNX Runtime session."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8  # opset 17's IR: loads in ONNX Runtime releases older than the onnx package building it


def _save(graph, path: Path) -> None:
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=IR_VERSION), path)


def cnn(path: Path, *, stride: int = 1, kernel: int = 3, channels: int = 8, classes: int = 10, seed: int = 0,
        batch: int | str = "N", hw: int | str = 64, layout: str = "NCHW", dtype: int = TensorProto.FLOAT,
        softmax: bool = False) -> Path:
    """conv(k, stride) -> ReLU -> conv(k, stride) -> ReLU -> global average pool -> matmul: no biases,
    zero 'same' padding. With stride 1 it is exactly equivariant to translations that keep the
    content away from the border, so its pooled features are invariant."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(channels, 3, kernel, kernel)).astype(np.float32)
    w2 = rng.normal(size=(channels, channels, kernel, kernel)).astype(np.float32) / channels
    fc = rng.normal(size=(channels, classes)).astype(np.float32)
    pad = [kernel // 2] * 4
    shape = [batch, 3, hw, hw] if layout == "NCHW" else [batch, hw, hw, 3]
    nodes = []
    x = "input"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]))
        x = "nchw"
    if dtype == TensorProto.FLOAT16:
        nodes.append(helper.make_node("Cast", [x], ["x32"], to=TensorProto.FLOAT))
        x = "x32"
    nodes += [
        helper.make_node("Conv", [x, "w1"], ["c1"], strides=[stride, stride], pads=pad),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], strides=[stride, stride], pads=pad),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["feat"]),
        helper.make_node("MatMul", ["feat", "fc"], ["logits"]),
    ]
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
        out = "probs"
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("input", dtype, shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [batch, classes])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(fc, "fc")])
    _save(graph, path)
    return path


def feature_map(path: Path) -> Path:
    """Not a classifier: outputs the conv feature map (N, 4, H, W)."""
    w = np.ones((4, 3, 1, 1), np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["out"])], "fmap",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4, 32, 32])],
        [numpy_helper.from_array(w, "w")])
    _save(graph, path)
    return path


def vector_input(path: Path) -> Path:
    """Not an image model: input (N, 16)."""
    w = np.ones((16, 4), np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["out"])], "vec",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(w, "w")])
    _save(graph, path)
    return path


def not_a_number(path: Path) -> Path:
    """Outputs NaN for every input: sqrt of a negative number (a broken export, or broken inputs)."""
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("Abs", ["m"], ["a"]), helper.make_node("Add", ["a", "one"], ["p"]),
             helper.make_node("Neg", ["p"], ["n"]), helper.make_node("Sqrt", ["n"], ["out"])]
    graph = helper.make_graph(nodes, "nan", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])],
                              [numpy_helper.from_array(np.ones(1, np.float32), "one")])
    _save(graph, path)
    return path


def memory_hog(path: Path) -> Path:
    """Asks ONNX Runtime for ~10^12 bytes on every batch (an intermediate far larger than any node has):
    how an engine running out of memory looks to the audit."""
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], axes=[2, 3], keepdims=1),
             helper.make_node("Expand", ["m", "shape"], ["big"]),
             helper.make_node("ReduceMean", ["big"], ["out"], axes=[2, 3], keepdims=0)]
    graph = helper.make_graph(nodes, "hog", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])],
                              [numpy_helper.from_array(np.array([1, 3, 200000, 200000], np.int64), "shape")])
    _save(graph, path)
    return path


def perturbed_head(source: Path, path: Path, scale: float = 0.5, seed: int = 1) -> Path:
    """A copy of ``source`` (a `cnn`) whose final layer is perturbed: the same features, somewhat
    different decisions, so two engines disagree on some frames by construction."""
    model = onnx.load(source)
    for init in model.graph.initializer:
        if init.name == "fc":
            fc = numpy_helper.to_array(init)
            noise = np.random.default_rng(seed).normal(size=fc.shape).astype(np.float32) * scale * fc.std()
            init.CopyFrom(numpy_helper.from_array(fc + noise, "fc"))
    onnx.save(model, path)
    return path


def with_background_class(source: Path, path: Path) -> Path:
    """A copy of ``source`` (a `cnn`) with one more class in front (as 1001-class ImageNet models have a
    background class 0) that never wins: class i of the source is class i + 1 here."""
    model = onnx.load(source)
    for init in model.graph.initializer:
        if init.name == "fc":
            fc = numpy_helper.to_array(init)
            background = np.full((fc.shape[0], 1), -1e3, np.float32)  # features are ReLU'd: >= 0
            init.CopyFrom(numpy_helper.from_array(np.concatenate([background, fc], axis=1), "fc"))
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value += 1
    onnx.save(model, path)
    return path


def shift_cnn(path: Path, *, subsample: str = "none", channels: int = 8, classes: int = 10, seed: int = 0,
              hw: int = 48) -> Path:
    """The per-layer profile's known answers: conv -> ReLU -> conv "conv2" -> ReLU -> conv -> ReLU -> global
    average pool -> matmul, 3x3 kernels, zero padding, no biases. ``subsample``: none (stride 1
    everywhere: exactly equivariant, so every error is 0), ``conv`` (conv2 has stride 2), ``blurpool``
    (conv2 keeps stride 1 and a fixed binomial blur "blurpool" of stride 2 follows its ReLU: Zhang's
    BlurPool)."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(channels, 3, 3, 3)).astype(np.float32)
    w2 = rng.normal(size=(channels, channels, 3, 3)).astype(np.float32) / channels
    w3 = rng.normal(size=(channels, channels, 3, 3)).astype(np.float32) / channels
    fc = rng.normal(size=(channels, classes)).astype(np.float32)
    binomial = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16
    blur = np.repeat(binomial[None, None], channels, axis=0)
    pad = [1, 1, 1, 1]
    strided = [2, 2] if subsample == "conv" else [1, 1]
    nodes = [helper.make_node("Conv", ["input", "w1"], ["c1"], name="conv1", pads=pad),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", strides=strided, pads=pad),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2")]
    x = "r2"
    if subsample == "blurpool":
        nodes.append(helper.make_node("Conv", ["r2", "blur"], ["b2"], name="blurpool", strides=[2, 2], pads=pad,
                                      group=channels))
        x = "b2"
    nodes += [helper.make_node("Conv", [x, "w3"], ["c3"], name="conv3", pads=pad),
              helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
              helper.make_node("GlobalAveragePool", ["r3"], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["feat"], name="flatten"),
              helper.make_node("MatMul", ["feat", "fc"], ["logits"], name="fc")]
    weights = {"w1": w1, "w2": w2, "w3": w3, "fc": fc} | ({"blur": blur} if subsample == "blurpool" else {})
    graph = helper.make_graph(
        nodes, f"shift_cnn_{subsample}", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, hw, hw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()])
    _save(graph, path)
    return path


def strided_stack(path: Path, *, hw: int = 240, stages: int = 5, channels: int = 4, classes: int = 10,
                  seed: int = 0) -> Path:
    """``stages`` convolutions of stride 2 (3x3, zero padding 1) on an ``hw`` input, then global average
    pooling and a matmul: at 240 pixels the last stage has 8x8 cells (padding rounds 7.5 up), so its
    stride is 32 although 240/8 is 30."""
    rng = np.random.default_rng(seed)
    nodes, weights, x, c = [], {}, "input", 3
    for k in range(stages):
        weights[f"w{k}"] = rng.normal(size=(channels, c, 3, 3)).astype(np.float32) / c
        nodes += [helper.make_node("Conv", [x, f"w{k}"], [f"c{k}"], name=f"conv{k}", strides=[2, 2], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{k}"], [f"r{k}"], name=f"relu{k}")]
        x, c = f"r{k}", channels
    weights["fc"] = rng.normal(size=(channels, classes)).astype(np.float32)
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["feat"], name="flatten"),
              helper.make_node("MatMul", ["feat", "fc"], ["logits"], name="fc")]
    graph = helper.make_graph(
        nodes, "strided_stack", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, hw, hw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()])
    _save(graph, path)
    return path
