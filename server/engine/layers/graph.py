"""An ONNX model seen as a stack of representations (paper §3): its spatial activations, each with its
cumulative stride, the subsampling op that set that stride, and its receptive field; and a copy of the
model that outputs a chosen few of them, which ONNX Runtime runs (no training framework).

Shapes come from running the model once on one blank frame with every node's output exposed, not from
ONNX shape inference: they are then the shapes at this canvas, whatever ops the graph uses.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError, named
from ..runners import ENGINE_SUFFIXES
from ..runners.base import InputSpec, engine_failure

SELECTIONS = ("stages", "all")
FLOATS = (np.float32, np.float16, np.float64)
POOLS = ("MaxPool", "AveragePool", "LpPool")
KERNELS = ("Conv", "ConvInteger", "QLinearConv", *POOLS)
_WHOLE = 0.05  # a size ratio within 5 % of a whole number is that stride (odd sizes, valid convolutions)


@dataclass(frozen=True)
class Tensor:
    """One spatial activation (or the input): where it sits in the graph and what it is made of."""

    name: str
    depth: int  # its producer's position in the graph's topological order; the input is 0
    node: str | None  # the node that makes it (None: the model's input)
    op: str | None
    shape: tuple[int, int, int]  # (channels, height, width)
    axes: tuple[int, int, int]  # the axes of channels, rows and columns in the tensor as ONNX Runtime returns it
    stride: tuple[float, float]  # cumulative (rows, columns): the canvas over the tensor, whole when within 5 %
    subsampled_by: tuple[str, str] | None  # (node, op) of the last op on its way that lowered the resolution
    receptive_field: int | None  # input pixels a cell sees through convolutions and pools (None: unknown op)

    def frame(self, activation: np.ndarray) -> np.ndarray:
        """One frame's activation (the batch axis taken) as (channels, rows, columns)."""
        return np.transpose(activation, [a - 1 for a in self.axes])

    @property
    def whole_stride(self) -> int | None:
        """The smallest input shift that moves the tensor by whole cells on both axes (None: a stride is
        not whole)."""
        sy, sx = self.stride
        if sy != int(sy) or sx != int(sx):
            return None
        return math.lcm(int(sy), int(sx))

    def to_json(self) -> dict:
        return {"name": self.name, "depth": self.depth, "node": self.node, "op": self.op, "shape": list(self.shape),
                "stride": [_number(s) for s in self.stride],
                "subsampled_by": dict(zip(("node", "op"), self.subsampled_by)) if self.subsampled_by else None,
                "receptive_field": self.receptive_field}


def _number(x: float) -> float | int:
    return int(x) if x == int(x) else round(x, 4)


def _stride(canvas: int, size: int) -> float:
    ratio = canvas / size
    return float(round(ratio)) if abs(ratio - round(ratio)) <= _WHOLE * ratio else ratio


def _spatial_axes(shape: Sequence[int], canvas: tuple[int, int], first: str) -> tuple[int, int, int] | None:
    """(channel, row, column) axes of a 4-D activation whose rows and columns shrink the canvas by one
    factor; ONNX's NCHW tried first unless the model's input is NHWC."""
    H, W = canvas
    for axes in ((1, 2, 3), (3, 1, 2)) if first == "NCHW" else ((3, 1, 2), (1, 2, 3)):
        h, w = shape[axes[1]], shape[axes[2]]
        if 0 < h <= H and 0 < w <= W and h * w > 1:
            sy, sx = H / h, W / w
            if abs(sy - sx) <= 0.25 * max(sy, sx):
                return axes
    return None


def check_onnx(path: Path) -> None:
    """Only an ONNX model can be profiled: a TensorRT engine is refused with what to profile instead."""
    if not path.is_file():
        raise FileNotFoundError(f"model {path} does not exist")
    if path.suffix.lower() in ENGINE_SUFFIXES:
        raise InputError(f"{path}: a TensorRT engine cannot be profiled layer by layer (marking its tensors as "
                         "outputs changes the fused engine); profile the ONNX model it was built from")
    if path.suffix.lower() != ".onnx":
        raise InputError(f"{path}: a layer profile reads ONNX models (.onnx), not {path.suffix or 'this file'}")


class Graph:
    """The model at ``path`` at the audit's canvas: ``tensors`` are its spatial float activations in
    graph order, the input first."""

    def __init__(self, path: Path, spec: InputSpec, canvas: tuple[int, int]) -> None:
        import onnx

        check_onnx(path)
        try:
            self.model = onnx.load(str(path))
        except Exception as e:  # onnx raises its own and protobuf's errors
            raise ModelError(f"{path}: not a readable ONNX model ({e})") from None
        self.path, self.spec, self.canvas = path, spec, canvas
        self.tensors = self._probe()
        self.by_name = {t.name: t for t in self.tensors}

    def _probe(self) -> list[Tensor]:
        """Every node output's shape on one blank frame, then the spatial ones described."""
        nodes = [n for n in self.model.graph.node if n.op_type != "Constant"]
        names = list(dict.fromkeys(o for n in nodes for o in n.output if o))
        shapes = dict(zip(names, (o.shape if o.dtype in FLOATS else None for o in self._run(names, self._blank()))))
        H, W = self.canvas
        layout = self.spec.layout
        weights = {i.name: tuple(i.dims) for i in self.model.graph.initializer}
        made: dict[str, Tensor] = {}
        first = (1, 2, 3) if layout == "NCHW" else (3, 1, 2)
        made[self.spec.name] = Tensor(self.spec.name, 0, None, None, (3, H, W), first, (1.0, 1.0), None, 1)
        for depth, node in enumerate(nodes, 1):
            for out in node.output:
                shape = shapes.get(out)
                axes = _spatial_axes(shape, self.canvas, layout) if shape is not None and len(shape) == 4 else None
                if axes is None or shape[0] != self._batch():
                    continue
                made[out] = self._tensor(node, out, depth, [shape[a] for a in axes], axes,
                                         [made[i] for i in node.input if i in made], weights)
        return list(made.values())

    def _tensor(self, node, out: str, depth: int, chw: list[int], axes: tuple[int, int, int], sources: list[Tensor],
                weights: dict[str, tuple]) -> Tensor:
        """A spatial node output of ``chw``, made from its spatial inputs ``sources``."""
        (H, W), (c, h, w) = self.canvas, chw
        stride = _op_stride(node, sources, (h, w)) or (_stride(H, h), _stride(W, w))
        return Tensor(out, depth, node.name or out, node.op_type, (c, h, w), axes, stride,
                      _subsampler(node, stride, sources), _receptive_field(node, sources, weights))

    def _batch(self) -> int:
        return self.spec.batch or 1

    def _blank(self) -> np.ndarray:
        H, W = self.canvas
        shape = (self._batch(), 3, H, W) if self.spec.layout == "NCHW" else (self._batch(), H, W, 3)
        return np.zeros(shape, self.spec.dtype)

    def _run(self, outputs: list[str], batch: np.ndarray) -> list[np.ndarray]:
        session = self.session(outputs)
        try:
            return session.run(outputs, {self.spec.name: batch})
        except Exception as e:
            raise engine_failure(e, f"{self.path}: ONNX Runtime failed with the activations exposed") from None

    def session(self, outputs: list[str], providers: Sequence = ("CPUExecutionProvider",)):
        """An ONNX Runtime session of a copy of the model whose outputs are ``outputs`` (the input itself is
        not one: the caller has it)."""
        import onnx
        import onnxruntime as ort

        copy = onnx.ModelProto()
        copy.CopyFrom(self.model)
        del copy.graph.output[:]
        copy.graph.output.extend(onnx.ValueInfoProto(name=name) for name in outputs)
        try:
            return ort.InferenceSession(copy.SerializeToString(), providers=list(providers))
        except Exception as e:
            raise engine_failure(e, f"{self.path}: ONNX Runtime cannot load it with the activations exposed") from None

    def select(self, which: Sequence[str]) -> list[Tensor]:
        """``stages``: the input, each subsampling op's output, the last tensor at each stride and the last
        spatial tensor (before global pooling); ``all``: every spatial activation; else the named tensors."""
        if list(which) == ["all"]:
            return list(self.tensors)
        if list(which) == ["stages"]:
            chosen = {self.tensors[0].name}
            last: dict[tuple[float, float], Tensor] = {}
            for t in self.tensors[1:]:
                if t.subsampled_by and t.subsampled_by[0] == t.node:
                    chosen.add(t.name)
                last[t.stride] = t
            chosen |= {t.name for t in last.values()} | {self.tensors[-1].name}
            return [t for t in self.tensors if t.name in chosen]
        for name in which:
            if name in SELECTIONS:
                raise InputError(f"{named('tensors')} {name} stands alone; it cannot be combined with tensor names")
            if name not in self.by_name:
                near = difflib.get_close_matches(name, list(self.by_name), n=3)
                raise InputError(f"{named('tensors')}: {self.path.name} has no spatial activation {name!r}"
                                 + (f" (did you mean {', '.join(near)}?)" if near else "")
                                 + f"; {len(self.by_name)} have a name ({named('tensors')} all lists them in the profile)")
        return sorted({self.by_name[n] for n in which}, key=lambda t: t.depth)

    def frame_bytes(self, tensors: Sequence[Tensor]) -> int:
        """Bytes of the chosen activations of one frame, as ONNX Runtime hands them back (at most: float16
        tensors take half)."""
        return sum(int(np.prod(t.shape)) * 4 for t in tensors if t.node is not None)


def _op_stride(node, sources: list[Tensor], size: tuple[int, int]) -> tuple[float, float] | None:
    """The cumulative stride as the ops make it: a convolution's or pool's ``strides`` times its input's,
    an op that keeps the size its input's. This is the step in input pixels between neighbouring cells,
    which the canvas over the size only approximates: padding rounds up (240 pixels through five
    stride-2 stages give 8 cells: 240/8 = 30, where a shift of 32 moves the tensor one cell). None when
    an op of another kind changes the size on the way (Resize, Slice...): then the ratio is all there is."""
    if not sources:
        return None
    source = max(sources, key=lambda t: max(t.stride))
    if any(s != int(s) for s in source.stride):
        return None
    if node.op_type in KERNELS:
        strides = next((list(a.ints) for a in node.attribute if a.name == "strides"), None) or [1, 1]
        return (source.stride[0] * strides[0], source.stride[1] * strides[-1])
    return source.stride if tuple(size) == source.shape[1:] else None


def _subsampler(node, stride: tuple[float, float], sources: list[Tensor]) -> tuple[str, str] | None:
    """This node, when it lowers the resolution of its spatial inputs; else their subsampling op."""
    if not sources:
        return None
    finest = min(sources, key=lambda t: max(t.stride))
    if max(stride) > max(finest.stride) * (1 + _WHOLE):
        return node.name or node.output[0], node.op_type
    return max(sources, key=lambda t: max(t.stride)).subsampled_by


def _receptive_field(node, sources: list[Tensor], weights: dict[str, tuple]) -> int | None:
    """Input pixels one cell sees: a kernel of k taps, dilation d, on a tensor of stride J adds (k-1)·d·J
    (the larger axis); other ops pass their inputs' widest field on. None once any op on the way is one
    whose reach is unknown (Resize, ...) or a kernel's size cannot be read."""
    if not sources or any(t.receptive_field is None for t in sources):
        return None
    field = max(t.receptive_field for t in sources)
    if node.op_type not in KERNELS:
        return None if node.op_type in ("Resize", "Upsample", "GridSample", "RoiAlign") else field
    attrs = {a.name: list(a.ints) for a in node.attribute}
    kernel = attrs.get("kernel_shape")
    if not kernel and node.op_type != "QLinearConv" and len(node.input) > 1:
        kernel = list(weights.get(node.input[1], ())[2:])
    if not kernel and node.op_type == "QLinearConv" and len(node.input) > 3:
        kernel = list(weights.get(node.input[3], ())[2:])
    if not kernel:
        return None
    dilation = attrs.get("dilations") or [1] * len(kernel)
    jump = max(sources[0].stride)
    return int(field + max((k - 1) * d for k, d in zip(kernel, dilation)) * jump)
