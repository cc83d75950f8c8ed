"""How much memory an ONNX model's activations take for one engine call of a given input shape, known
before the call: a server checks it against an audit's memory budget (`budget.MemoryBudget`) at
admission, so that a canvas of 4096x4096 through a dynamic-input model is refused, not run to 7 GB.

The shapes come from ONNX's shape inference at the call's input shape; the memory from the tensors'
lifetimes in the graph's (topological) order: a tensor lives from the node that makes it to the last
node that reads it, and the peak of the live bytes is what an executor that frees each tensor after its
last use needs. ONNX Runtime plans its memory that way (its runner adds a margin: `onnxruntime.ARENA`).
Weights are the model's, not the audit's: not counted.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np


@functools.lru_cache(maxsize=32)
def peak_activation_bytes(path: Path, shape: tuple[int, ...]) -> int | None:
    """The peak of live activation bytes for an input of ``shape`` (the model's single image input);
    None when shape inference cannot size most of the graph (custom operators, shapes that depend on
    the data): the caller then falls back on a bound of its own."""
    import onnx  # here, not at import: it takes a second, and only a server's admission needs it

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    (image,) = [i for i in graph.input if i.name not in weights]
    dims = image.type.tensor_type.shape.dim
    for d, n in zip(dims, shape):
        d.ClearField("dim_param")
        d.dim_value = n
    del graph.value_info[:]  # shapes an exporter recorded at another input size: inferred anew
    for out in graph.output:
        out.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False).graph
    except Exception:  # an operator ONNX does not know: no sizes at all
        return None
    sizes = {v.name: _bytes(v) for v in (*inferred.value_info, *inferred.output, *inferred.input)}
    made = [o for node in graph.node for o in node.output if o]
    if not made or sum(sizes.get(o) is not None for o in made) < 0.9 * len(made):
        return None
    return _peak(graph.node, sizes, {o.name for o in graph.output}, image.name)


def _bytes(value) -> int | None:
    """A tensor's bytes from its inferred type, None when a dimension or the type is unknown."""
    from onnx.helper import tensor_dtype_to_np_dtype

    t = value.type.tensor_type
    dims = [d.dim_value for d in t.shape.dim]
    if not t.HasField("shape") or not all(dims) or not t.elem_type:
        return None
    return int(np.prod(dims)) * np.dtype(tensor_dtype_to_np_dtype(t.elem_type)).itemsize


def _peak(nodes: Sequence, sizes: dict[str, int | None], outputs: set[str], image: str) -> int:
    """The most bytes live at once when the nodes run in order, each tensor freed after its last reader
    (the graph's outputs are kept to the end; the input is the caller's batch, counted there)."""
    last = {name: i for i, node in enumerate(nodes) for name in node.input}
    live: dict[str, int] = {}
    peak = 0
    for i, node in enumerate(nodes):
        for name in node.output:
            if name and name != image:
                live[name] = sizes.get(name) or 0
        peak = max(peak, sum(live.values()))
        for name in node.input:
            if last.get(name) == i and name not in outputs:
                live.pop(name, None)
    return peak
