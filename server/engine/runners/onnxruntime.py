"""ONNX Runtime runner: the CPU execution provider, the CUDA provider when onnxruntime-gpu is
installed, or its TensorRT provider when asked; on a GPU fed through I/O binding straight from our
render buffer."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shiftaudit.kernels import cache_dir

from ..errors import named
from .activations import peak_activation_bytes
from .base import InputSpec, ModelError, Runner, _dim, classifier_output, engine_failure, float_tensor, image_input

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


Provider = str | tuple[str, dict]
# Host memory of a CPU call over the graph's planned peak of live activations (`activations`): measured
# on EfficientNet-Lite0, the RSS a call added was 0.5-0.9 of the peak at batches 4-128 and sides 224-1024,
# and 35 MiB at batch 1 and 224 (thread buffers): a margin on the peak, and a fixed part.
ARENA = 1.25
CALL_BYTES = 48 << 20


def providers_for(device: str, tensorrt: bool) -> list[Provider]:
    """The providers a session asks for. TensorRT's caches its engines (keyed by model and GPU) under
    our cache directory, so only the first audit of a model pays for the build."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if tensorrt:
        if device == "cpu":
            raise ModelError(f"ONNX Runtime's TensorRT provider runs on a GPU; {named('device')} cpu cannot use it")
        if "TensorrtExecutionProvider" not in available:
            raise ModelError(f"this ONNX Runtime ({ort.__version__}, providers {', '.join(available)}) has no "
                             "TensorRT execution provider: install onnxruntime-gpu and TensorRT "
                             "(pip install tensorrt --extra-index-url https://pypi.nvidia.com)")
        cache = cache_dir("ort-tensorrt")
        options = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                   "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache)}
        return [("TensorrtExecutionProvider", options), "CUDAExecutionProvider", "CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def __init__(self, path: Path, providers: Sequence[Provider] = ("CPUExecutionProvider",),
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self._path, self._options, self._providers = path, opts, list(providers)
        self.session = self._new_session()
        self.providers = tuple(self.session.get_providers())
        missing = [name for name in (p if isinstance(p, str) else p[0] for p in providers) if name not in self.providers]
        if missing:  # ORT falls back to the CPU with a mere warning; an audit must not
            raise ModelError(f"{path}: ONNX Runtime did not enable {', '.join(missing)} (running on "
                             f"{', '.join(self.providers)}); check the CUDA/cuDNN libraries onnxruntime-gpu needs")
        gpu = {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(self.providers)
        self.memory_devices = ("cpu", "cuda") if gpu else ("cpu",)
        self._spec = self._read_spec(path)
        self._output = self.session.get_outputs()[0].name

    def _new_session(self):
        import onnxruntime as ort

        try:
            return ort.InferenceSession(str(self._path), self._options, providers=self._providers)
        except Exception as e:  # ORT raises its own exception types for every load failure
            raise engine_failure(e, f"{self._path}: ONNX Runtime cannot load it") from None

    def release_memory(self) -> None:
        """A new session in place of this one. ONNX Runtime's CPU arena keeps the largest batch's memory
        for the session's life (1.1 GB after a batch of 128 of EfficientNet-Lite0); dropping the session
        gives it back, and making it anew took 0.09 s. A call in progress keeps the old one to its end."""
        self.session = self._new_session()

    def activation_bytes(self, batch: int, hw: tuple[int, int]) -> int:
        """The graph's peak of live activations at this call's shape (`activations`) with ARENA's margin and
        CALL_BYTES; nothing on the host when a GPU provider runs the graph."""
        if "cuda" in self.memory_devices:
            return 0
        h, w = hw
        shape = (batch, 3, h, w) if self._spec.layout == "NCHW" else (batch, h, w, 3)
        peak = peak_activation_bytes(self._path, shape)
        return super().activation_bytes(batch, hw) if peak is None else int(ARENA * peak) + CALL_BYTES

    def _read_spec(self, path: Path) -> InputSpec:
        inputs, output = self.session.get_inputs(), self.session.get_outputs()[0]
        name, layout, h, w = image_input(path, [(i.name, i.shape) for i in inputs])
        dtype = float_tensor(path, name, inputs[0].type, _DTYPES.get(inputs[0].type))
        classifier_output(path, output.name, output.shape)
        return InputSpec(name, layout, h, w, dtype, _dim(inputs[0].shape[0]))

    def input_spec(self) -> InputSpec:
        return self._spec

    def io_tensors(self) -> dict[str, list[dict]]:
        def info(t) -> dict:
            return {"name": t.name, "shape": [_dim(d) or -1 for d in t.shape], "dtype": t.type}
        return {"inputs": [info(t) for t in self.session.get_inputs()],
                "outputs": [info(t) for t in self.session.get_outputs()]}

    def describe(self) -> dict:
        return {**super().describe(), "providers": list(self.providers)}

    def _run_bound(self, batch) -> np.ndarray:
        """Inference on a batch where it lies (I/O binding): no copy through the host."""
        session = self.session  # one session for the whole call: `release_memory` may swap it meanwhile
        io = session.io_binding()
        io.bind_input(self._spec.name, batch.device, 0, batch.dtype, list(batch.shape), batch.address)
        io.bind_output(self._output, "cpu")
        try:
            session.run_with_iobinding(io)
        except Exception as e:
            raise engine_failure(e, f"ONNX Runtime failed on a bound batch of {batch.shape[0]}") from None
        return io.copy_outputs_to_cpu()[0]

    def _run(self, batch: np.ndarray) -> np.ndarray:
        try:
            return self.session.run([self._output], {self._spec.name: batch})[0]
        except Exception as e:
            raise engine_failure(e, f"ONNX Runtime failed on a batch of {len(batch)}") from None
