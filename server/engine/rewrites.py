"""The remedies (`remedy.Remedy`) for a model that is not shift-invariant, as rewrites of a copy of its
exported ONNX graph: no training framework, no retraining. Each takes the original `onnx.ModelProto` and returns a new one, the
remedy recorded in its metadata (`REMEDY`) beside the preprocessing it is audited with (`METADATA`), so a
written variant is a self-describing ONNX file (an audit server takes it as is).

- ``blur`` (BlurPool, Zhang 2019, "Making convolutional networks shift-invariant again"): each chosen
  subsampling op (a strided Conv, MaxPool or AveragePool) runs at stride 1 and a depthwise binomial
  low-pass of size 3 or 5 subsamples at its stride. After a Conv whose only consumer is an elementwise
  activation (ReLU, Clip...), the blur goes after the activation, as the paper's ConvBlurPool; MaxPool
  becomes MaxBlurPool, AveragePool a stride-1 average then the blur. The op's padding is kept, so every
  tensor keeps its size. Cost: the op runs on s² times the positions.
- ``input-blur``: a binomial low-pass of the input (reflected at the borders) before the model; the
  cheapest remedy, and the weakest (aliasing arises inside the network, at every subsampling).
- ``shift-average``: the model run on a grid of one-pixel shifts of its input (edge pixels repeated), its
  probabilities averaged (softmax first when it outputs logits): k times the compute. On the single shift
  (0, 0) the graph is the original's, exactly.

None of them retrains: a blur the weights never saw usually costs accuracy, and a nonlinearity after a
blur can bring aliasing back (the paper's §3); `remediate` measures both on the model's own engine.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .errors import InputError
from .preprocessing import METADATA
from .remedy import BINOMIAL, Remedy

REMEDY = "shiftaudit.remedy"  # a written variant's metadata_props key: what was rewritten, as JSON
SUBSAMPLERS = ("Conv", "MaxPool", "AveragePool")
ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Elu", "Selu", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh",
               "Softplus", "Softsign", "Gelu", "Mish")


def rewrite(model: onnx.ModelProto, remedy: Remedy, preprocessing: dict) -> tuple[onnx.ModelProto, dict]:
    """A copy of ``model`` with ``remedy`` applied, checked, and what was rewritten (`REMEDY`'s value);
    ``preprocessing``: the original's sidecar values, recorded in the copy (`METADATA`), its output kind
    changed where the remedy changes it. InputError for a graph the remedy cannot rewrite."""
    out = copy.deepcopy(model)
    graph = out.graph
    if len(graph.input) - len({i.name for i in graph.initializer} & {i.name for i in graph.input}) != 1:
        raise InputError("a remedy rewrites models with one image input")
    if remedy.kind == "blur":
        done = _blur(out, remedy)
    elif remedy.kind == "input-blur":
        done = _input_blur(out, remedy.size)
    else:
        done = _shift_average(out, remedy.grid, preprocessing)
    record = {**remedy.to_json(), **done}
    pre = {**preprocessing, **({"output": "probabilities"} if done.get("averaged") else {})}
    props = {p.key: p.value for p in out.metadata_props} | {REMEDY: json.dumps(record), METADATA: json.dumps(pre)}
    del out.metadata_props[:]
    for key, value in props.items():
        out.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(out, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise InputError(f"the {remedy.name} rewrite is not a valid model: {str(e).splitlines()[0][:300]}") from None
    return out, record


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _stride(node: onnx.NodeProto) -> list[int]:
    return list(_attrs(node).get("strides") or [1, 1])


def subsamplers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The graph's subsampling ops in graph order: a Conv, MaxPool or AveragePool with a stride above 1."""
    return [n for n in model.graph.node if n.op_type in SUBSAMPLERS and max(_stride(n)) > 1]


def _chosen(model: onnx.ModelProto, at: Sequence[str]) -> list[onnx.NodeProto]:
    ops = subsamplers(model)
    quantized = [n for n in model.graph.node if n.op_type in ("QLinearConv", "ConvInteger") and max(_stride(n)) > 1]
    if quantized:
        raise InputError(f"{quantized[0].name or quantized[0].output[0]}: a quantized {quantized[0].op_type}; blur "
                         "rewrites float graphs (remedy the float model, then quantize it again)")
    if not ops:
        raise InputError("the model has no subsampling op (a strided Conv, MaxPool or AveragePool): blur has "
                         "nothing to rewrite")
    if tuple(at) == ("all",):
        return ops
    if len(at) == 1 and at[0].startswith("first:"):
        try:
            k = int(at[0][6:])
        except ValueError:
            raise InputError(f"blur at {at[0]!r}: expected first:K, K a number") from None
        if not 1 <= k <= len(ops):
            raise InputError(f"blur at first:{k}: the model has {len(ops)} subsampling ops")
        return ops[:k]
    by_name = {key: n for n in ops for key in (n.name, n.output[0])}
    every = {key for n in model.graph.node for key in (n.name, *n.output)}
    for name in at:
        if name not in by_name:
            raise InputError(f"blur at {name!r}: " + ("not a subsampling op" if name in every
                                                      else "no node or tensor of the model has that name"))
    return list(dict.fromkeys(by_name[name] for name in at))


def _channels(model: onnx.ModelProto, node: onnx.NodeProto) -> int:
    """The channels of ``node``'s output: a Conv's weight's first dimension, else shape inference's."""
    weights = {i.name: i for i in model.graph.initializer}
    if node.op_type == "Conv":
        # a quantized (QDQ) model's weights come out of a DequantizeLinear of a constant
        made = {o: n for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
        weight = made[node.input[1]].input[0] if node.input[1] in made else node.input[1]
        if weight not in weights:
            raise InputError(f"{node.name or node.output[0]}: its weights are not constants: blur cannot size its filter")
        return int(weights[weight].dims[0])
    inferred = onnx.shape_inference.infer_shapes(model)
    for info in (*inferred.graph.value_info, *inferred.graph.input):
        if info.name == node.input[0]:
            dims = info.type.tensor_type.shape.dim
            if len(dims) == 4 and dims[1].HasField("dim_value"):
                return int(dims[1].dim_value)
    raise InputError(f"{node.name or node.output[0]}: the channels of its input are not known: blur cannot size "
                     "its filter")


def _filter(name: str, channels: int, size: int) -> onnx.TensorProto:
    """A depthwise binomial low-pass, ``size`` taps a side, for ``channels`` channels."""
    taps = np.array(BINOMIAL[size], np.float32)
    kernel = np.outer(taps, taps) / taps.sum() ** 2
    return numpy_helper.from_array(np.repeat(kernel[None, None], channels, axis=0).astype(np.float32), name)


def _blur_node(source: str, output: str, weight: str, channels: int, size: int, stride: list[int],
               name: str) -> onnx.NodeProto:
    q = size // 2
    return helper.make_node("Conv", [source, weight], [output], name=name, group=channels, kernel_shape=[size, size],
                            strides=stride, pads=[q, q, q, q])


def _blur(model: onnx.ModelProto, remedy: Remedy) -> dict:
    graph = model.graph
    chosen = _chosen(model, remedy.at)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in graph.output}
    rewritten = []
    for node in chosen:
        attrs = _attrs(node)
        label = node.name or node.output[0]
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or attrs.get("ceil_mode", 0):
            raise InputError(f"{label}: blur rewrites ops with explicit pads (auto_pad NOTSET) and ceil_mode 0")
        if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
            raise InputError(f"{label}: a MaxPool whose indices are used cannot be blurred")
        stride = _stride(node)
        channels = _channels(model, node)
        for a in node.attribute:
            if a.name == "strides":
                a.CopyFrom(helper.make_attribute("strides", [1] * len(stride)))
        after = consumers.get(node.output[0], [])
        act = after[0] if (node.op_type == "Conv" and len(after) == 1 and after[0].op_type in ACTIVATIONS
                           and node.output[0] not in outputs) else None
        if act:  # the op's output is larger now: a recorded shape of it would contradict the graph
            _forget_shape(model, node.output[0])
        last = act or node  # the blur subsamples what this node outputs; its readers read the blur
        source, blurred = last.output[0], f"{last.output[0]}__blurpool"
        weight = f"{label}__blurpool_filter"
        graph.initializer.append(_filter(weight, channels, remedy.size))
        graph.node.insert(list(graph.node).index(last) + 1,
                          _blur_node(blurred, source, weight, channels, remedy.size, stride, f"{label}__blurpool"))
        last.output[0] = blurred  # the blur takes the name its readers read
        rewritten.append({"node": label, "op": node.op_type, "stride": stride,
                          "blur_after": last.op_type if act else node.op_type})
    return {"rewritten": rewritten}


def _forget_shape(model: onnx.ModelProto, tensor: str) -> None:
    kept = [v for v in model.graph.value_info if v.name != tensor]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)


def _image_input(model: onnx.ModelProto) -> tuple[onnx.ValueInfoProto, str]:
    """The image input and its layout (NCHW unless its last dimension is the 3 channels)."""
    inits = {i.name for i in model.graph.initializer}
    info = next(i for i in model.graph.input if i.name not in inits)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise InputError(f"input {info.name!r} is not an image batch (4 dimensions)")
    return info, "NHWC" if dims[3] == 3 and dims[1] != 3 else "NCHW"


def _renamed_input(model: onnx.ModelProto) -> tuple[str, str, str]:
    """The model's image input renamed inside the graph: (the outside name, the inside name, the layout)."""
    info, layout = _image_input(model)
    outside, inside = info.name, f"{info.name}__original"
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            if name == outside:
                node.input[k] = inside
    return outside, inside, layout


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def _const(model: onnx.ModelProto, name: str, values: Sequence[int]) -> str:
    model.graph.initializer.append(numpy_helper.from_array(np.array(values, np.int64), name))
    return name


def _input_blur(model: onnx.ModelProto, size: int) -> dict:
    outside, inside, layout = _renamed_input(model)
    q, nodes = size // 2, []
    x = outside
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [x], ["input_blur__nchw"], perm=[0, 3, 1, 2]))
        x = "input_blur__nchw"
    pads = _const(model, "input_blur__pads", [0, 0, q, q, 0, 0, q, q])
    nodes.append(helper.make_node("Pad", [x, pads], ["input_blur__padded"], mode="reflect"))
    model.graph.initializer.append(_filter("input_blur__filter", 3, size))
    blurred = inside if layout == "NCHW" else "input_blur__out"
    nodes.append(helper.make_node("Conv", ["input_blur__padded", "input_blur__filter"], [blurred], group=3,
                                  kernel_shape=[size, size]))
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [blurred], [inside], perm=[0, 2, 3, 1]))
    for k, node in enumerate(nodes):
        node.name = node.name or f"input_blur__{k}"
        model.graph.node.insert(k, node)
    return {"layout": layout}


def _shift_average(model: onnx.ModelProto, grid: int, preprocessing: dict) -> dict:
    """The model on every shift (dx, dy) in 0..grid-1 of its input at once (the shifted copies stacked on the
    batch axis: the model must take a dynamic batch), its probabilities averaged."""
    if grid == 1:
        return {"shifts": [[0, 0]], "averaged": False}
    info, layout = _image_input(model)
    batch = info.type.tensor_type.shape.dim[0]
    if batch.HasField("dim_value"):
        raise InputError(f"shift-average stacks the shifted copies on the batch axis: input {info.name!r} has a "
                         f"fixed batch of {batch.dim_value}")
    if len(model.graph.output) != 1:
        raise InputError("shift-average averages one output: the model has several")
    outside, inside, _ = _renamed_input(model)
    rows, cols = (2, 3) if layout == "NCHW" else (1, 2)
    s = grid - 1
    pads = [0] * 8
    pads[rows], pads[cols], pads[rows + 4], pads[cols + 4] = s, s, s, s
    nodes = [helper.make_node("Pad", [outside, _const(model, "shift__pads", pads)], ["shift__padded"], mode="edge")]
    shifts = [(dx, dy) for dy in range(grid) for dx in range(grid)]
    copies = []
    for dx, dy in shifts:  # the picture moves by (dx, dy): the window starts s - d into the padded image
        name = f"shift__{dx}_{dy}"
        starts = _const(model, f"{name}__starts", [s - dy, s - dx])
        ends = _const(model, f"{name}__ends", [-(s + dy), -(s + dx)])  # s >= 1: never 0
        axes = _const(model, f"{name}__axes", [rows, cols])
        nodes.append(helper.make_node("Slice", ["shift__padded", starts, ends, axes], [name]))
        copies.append(name)
    nodes.append(helper.make_node("Concat", copies, [inside], axis=0))
    out = model.graph.output[0]
    kind = preprocessing.get("output", "auto")  # auto: probabilities when the graph ends in a Softmax
    logits = kind == "logits" or kind == "auto" and not any(n.op_type == "Softmax" and out.name in n.output
                                                          for n in model.graph.node)
    scores = f"{out.name}__each"
    for node in model.graph.node:
        for k, name in enumerate(node.output):
            if name == out.name:
                node.output[k] = scores
    rank = len(out.type.tensor_type.shape.dim)
    if rank not in (0, 2):  # 0: not declared
        raise InputError(f"shift-average averages a (batch, classes) output: {out.name!r} has {rank} dimensions")
    after = [helper.make_node("Shape", [scores], ["shift__shape_all"]),  # the classes: its second dimension
             helper.make_node("Slice", ["shift__shape_all", _const(model, "shift__one", [1]),
                                        _const(model, "shift__two", [2])], ["shift__shape"]),
             helper.make_node("Concat", [_const(model, "shift__copies", [len(shifts), -1]), "shift__shape"],
                              ["shift__stacked"], axis=0),
             helper.make_node("Reshape", [scores, "shift__stacked"], ["shift__by_copy"])]
    if logits:  # averaged as probabilities: logits become them first
        after.append(helper.make_node("Softmax", ["shift__by_copy"], ["shift__probabilities"], axis=-1))
    mean_of = "shift__probabilities" if logits else "shift__by_copy"
    after.append(helper.make_node("ReduceMean", [mean_of, _const(model, "shift__axis", [0])], [out.name], keepdims=0)
                 if _opset(model) >= 18 else helper.make_node("ReduceMean", [mean_of], [out.name], axes=[0], keepdims=0))
    for k, node in enumerate(nodes):
        node.name = f"shift__{k}"
        model.graph.node.insert(k, node)
    for k, node in enumerate(after):
        node.name = f"shift__average_{k}"
        model.graph.node.append(node)
    return {"shifts": [list(s) for s in shifts], "averaged": True}

