"""How much memory an ONNX model's activations take for one engine call of a given input shape, known
before the call: a server checks it against an audit's memory budget (`budget.MemoryBudget`) at
admission, so that a canvas of 4096x4096 through a dynamic-input model is refused, not run to 7 GB.

The shapes come from ONNX's shape inference at the call's input shape; the memory from the tensors'
lifetimes in the graph's (topological) order: a tensor lives from the node that makes it to the last
node that reads it, and the peak of the live bytes is what an executor that frees each tensor after its
last use needs. ONNX Runtime plans its memory that way (its runner adds a margin: `onnxruntime.ARENA`).
Weights are the model's, not the audit's: not counted.

The work is done in a helper process (this module run with ``-m``; a line of JSON a question and an
answer), started at the first estimate: ONNX's shape inference holds the GIL (up to 80 ms a call on
EfficientNet-Lite0), time in which a server's event loop could not answer health. The helper loads only
ONNX's compiled shape inference and its protobuf classes, not the `onnx` package, whose import takes
1.5 s (1.25 s of it ml_dtypes'). Answers are cached by file and shape.
"""
from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_helper: subprocess.Popen | None = None
_lock = threading.Lock()
# bytes of an element of each TensorProto data type (4-bit types rounded up to a byte)
ITEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
              17: 1, 18: 1, 19: 1, 20: 1, 21: 1, 22: 1, 23: 1}


def peak_activation_bytes(path: Path, shape: tuple[int, ...]) -> int | None:
    """The peak of live activation bytes for an input of ``shape`` (the model's single image input);
    None when shape inference cannot size most of the graph (custom operators, shapes that depend on
    the data) or the helper failed: the caller then falls back on a bound of its own."""
    st = path.stat()
    return _cached(str(path.resolve()), st.st_mtime_ns, st.st_size, tuple(shape))


@functools.lru_cache(maxsize=64)
def _cached(path: str, mtime_ns: int, size: int, shape: tuple[int, ...]) -> int | None:
    global _helper
    with _lock:
        try:
            if _helper is None or _helper.poll() is not None:
                _helper = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True)
            _helper.stdin.write(json.dumps({"path": path, "shape": shape}) + "\n")
            _helper.stdin.flush()
            return json.loads(_helper.stdout.readline())["peak"]
        except (OSError, ValueError, KeyError):  # the helper died (out of memory?): the next estimate starts another
            _helper = None
            return None


def close() -> None:
    """Stop the helper (a server, at exit: it shares the server's stderr, whose end the log relay waits for)."""
    global _helper
    with _lock:
        if _helper is not None:
            _helper.stdin.close()
            try:
                _helper.wait(5)
            except subprocess.TimeoutExpired:
                _helper.kill()
            _helper = None


def _onnx() -> tuple[Any, Any]:
    """ONNX's protobuf classes and compiled shape inference, without importing the `onnx` package (its
    ``__init__`` imports ml_dtypes, 1.25 s): the package's folder stands in for it."""
    import importlib.util
    import types

    if "onnx" not in sys.modules:
        package = types.ModuleType("onnx")
        package.__path__ = list(importlib.util.find_spec("onnx").submodule_search_locations)
        sys.modules["onnx"] = package
    from onnx import onnx_ml_pb2
    from onnx.onnx_cpp2py_export import shape_inference
    return onnx_ml_pb2, shape_inference


def _peak_of(path: str, shape: Sequence[int]) -> int | None:
    """In the helper: `peak_activation_bytes`' work."""
    proto, inference = _onnx()
    model = proto.ModelProto()
    model.ParseFromString(Path(path).read_bytes())
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
    inferred = proto.ModelProto()
    try:
        inferred.ParseFromString(inference.infer_shapes(model.SerializeToString(), False, False, False))
    except Exception:  # an operator ONNX does not know: no sizes at all
        return None
    g = inferred.graph
    sizes = {v.name: _bytes(v) for v in (*g.value_info, *g.output, *g.input)}
    made = [o for node in graph.node for o in node.output if o]
    if not made or sum(sizes.get(o) is not None for o in made) < 0.9 * len(made):
        return None
    return _peak(graph.node, sizes, {o.name for o in graph.output}, image.name)


def _bytes(value) -> int | None:
    """A tensor's bytes from its inferred type, None when a dimension or the type is unknown."""
    t = value.type.tensor_type
    dims = [d.dim_value for d in t.shape.dim]
    if not t.HasField("shape") or not all(dims) or t.elem_type not in ITEM_BYTES:
        return None
    n = 1
    for d in dims:
        n *= d
    return n * ITEM_BYTES[t.elem_type]
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


def main() -> None:
    """The helper: a JSON question a line ({"path", "shape"}), a JSON answer a line ({"peak"})."""
    for line in sys.stdin:
        question = json.loads(line)
        try:
            peak = _peak_of(question["path"], question["shape"])
        except Exception:  # a file that is not a model any more, a graph ONNX cannot read: no estimate
            peak = None
        print(json.dumps({"peak": peak}), flush=True)


if __name__ == "__main__":
    main()
