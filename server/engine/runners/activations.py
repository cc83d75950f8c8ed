"""How much memory an ONNX model's activations take for one engine call of a given input shape, known
before the call: a server checks it against an audit's memory budget (`budget.MemoryBudget`) at
admission, so that a canvas of 4096x4096 through a dynamic-input model is refused, not run to 7 GB.

The shapes come from ONNX's shape inference at the call's input shape; the memory from the tensors'
lifetimes in the graph's (topological) order: a tensor lives from the node that makes it to the last
node that reads it, and the peak of the live bytes is what an executor that frees each tensor after its
last use needs. ONNX Runtime plans its memory that way (its runner adds a margin: `onnxruntime.ARENA`).
Weights are the model's, not the audit's: not counted.

The work is done in a helper process, started at the first estimate: importing onnx takes 1.5 s (1.25 s
of it its ml_dtypes) and its shape inference held the GIL for up to 80 ms a call (EfficientNet-Lite0),
time in which a server's event loop could not answer health. The helper has neither; the first estimate
waits for its start (about 2 s), and the answers are cached by file and shape.
"""
from __future__ import annotations

import functools
import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

_helper: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def peak_activation_bytes(path: Path, shape: tuple[int, ...]) -> int | None:
    """The peak of live activation bytes for an input of ``shape`` (the model's single image input);
    None when shape inference cannot size most of the graph (custom operators, shapes that depend on
    the data) or the helper failed: the caller then falls back on a bound of its own."""
    st = path.stat()
    return _cached(str(path), st.st_mtime_ns, st.st_size, shape)


@functools.lru_cache(maxsize=64)
def _cached(path: str, mtime_ns: int, size: int, shape: tuple[int, ...]) -> int | None:
    global _helper
    try:
        return _pool().submit(_peak_of, path, shape).result()
    except BrokenProcessPool:  # killed (out of memory?): the next estimate starts another
        with _lock:
            _helper = None
        return None


def _pool() -> ProcessPoolExecutor:
    global _helper
    with _lock:
        if _helper is None:
            _helper = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return _helper


def _peak_of(path: str, shape: tuple[int, ...]) -> int | None:
    """In the helper: `peak_activation_bytes`' work."""
    import onnx

    model = onnx.load(path, load_external_data=False)
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
