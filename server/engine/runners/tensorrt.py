"""TensorRT runner: serialized engines (``.plan``, ``.engine``) through the Python API that TensorRT 10
and 11 share: tensors by name, ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3`` on a
stream of ours, reading the batch where our kernels rendered it.

TensorRT is imported only when an engine is opened, so everything else runs without it. What can be
decided without TensorRT (the engine's manifest, which tensors the audit needs, the batch range of its
optimisation profile) is plain code beside the calls into TensorRT, and is tested on its own.
NOT RUN HERE: no machine of this project has TensorRT (docs/gpu-validation.md).
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from shiftaudit.kernels.launch import Gpu, cuda_call

from ..errors import named
from . import BuildOptions
from .base import InputSpec, ModelError, Runner, classifier_output, float_tensor, image_input
from .manifest import SCHEMA, EngineMismatch, check_file, check_runtime, manifest_path, read_manifest

DTYPES = {"FLOAT": np.float32, "HALF": np.float16}  # TensorRT DataType names the audit can feed or read
INSTALL = ("pip install tensorrt --extra-index-url https://pypi.nvidia.com (NVIDIA's wheels; on a machine "
           "with an NVIDIA GPU and driver), or audit the ONNX model instead")


class TensorRTMissing(ModelError):
    """TensorRT (or cuda-python) is not installed here."""


@dataclass(frozen=True)
class Tensor:
    """One I/O tensor of an engine, as the engine (or its manifest) describes it."""

    name: str
    is_input: bool
    shape: tuple[int, ...]  # -1: dynamic
    dtype: str  # TensorRT DataType name: FLOAT, HALF, INT8, ...
    profile: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None = None  # min, opt, max (inputs)
    linear: bool = True  # TensorFormat.LINEAR; vectorised formats cannot take our batch

    def to_json(self) -> dict:
        return {"name": self.name, "input": self.is_input, "shape": list(self.shape), "dtype": self.dtype,
                "profile": [list(s) for s in self.profile] if self.profile else None, "linear": self.linear}


def plan_io(tensors: list[Tensor], path: Path) -> tuple[InputSpec, Tensor]:
    """The audit's view of an engine: its one image input (layout, size, dtype, batch range from the
    first optimisation profile) and its one (batch, classes) output; an error for anything else."""
    inputs = [t for t in tensors if t.is_input]
    outputs = [t for t in tensors if not t.is_input]
    name, layout, h, w = image_input(path, [(t.name, t.shape) for t in inputs])
    if len(outputs) != 1:
        raise ModelError(f"{path}: engine has {len(outputs)} outputs; shiftaudit audits image classifiers with one")
    inp, out = inputs[0], outputs[0]
    for t in (inp, out):
        float_tensor(path, t.name, t.dtype, DTYPES.get(t.dtype))
        if not t.linear:
            raise ModelError(f"{path}: tensor {t.name!r} has a vectorised format; build the engine with linear I/O")
    classifier_output(path, out.name, out.shape)
    if out.shape[1] < 1:  # our output buffer is sized by it
        raise ModelError(f"{path}: output {out.name!r} has a dynamic number of classes; build the engine with a "
                         "fixed one")
    if h is None or w is None:
        raise ModelError(f"{path}: input {name!r} has a dynamic height or width; build the engine for one size")
    dtype = np.dtype(DTYPES[inp.dtype])
    if inp.shape[0] > 0:
        return InputSpec(name, layout, h, w, dtype, inp.shape[0]), out
    if inp.profile is None:
        raise ModelError(f"{path}: input {name!r} has a dynamic batch but no optimisation profile")
    least, _, most = (s[0] for s in inp.profile)
    return InputSpec(name, layout, h, w, dtype, None, least, most), out


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise TensorRTMissing(f"TensorRT is not installed here: {INSTALL}") from None
    return tensorrt


@lru_cache(maxsize=1)
def tensorrt_version() -> str | None:
    """The installed TensorRT's version, or None (its wheels are named per CUDA release: tensorrt-cu13...,
    so the distribution's name does not tell)."""
    try:
        return import_tensorrt().__version__
    except TensorRTMissing:
        return None


def open_gpu() -> Gpu:
    """GPU 0 through cuda-python (the gpu extra)."""
    try:
        return Gpu(0)
    except ImportError:
        raise TensorRTMissing("TensorRT engines need cuda-python: pip install 'shiftaudit[gpu]'") from None
    except RuntimeError as e:
        raise TensorRTMissing(f"no usable GPU for TensorRT: {e}") from None


def logger(trt):
    """A TensorRT logger that keeps the errors, so a failure can say what TensorRT said."""

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg: str) -> None:
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                self.errors = [*self.errors[-4:], str(msg).strip()]

    return Logger()


def describe(trt, engine) -> list[Tensor]:
    """Every I/O tensor of ``engine``, through the name-based API (profile 0 for inputs)."""
    tensors = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        shape = tuple(engine.get_tensor_shape(name))
        profile = None
        if is_input and -1 in shape and engine.num_optimization_profiles > 0:
            profile = tuple(tuple(s) for s in engine.get_tensor_profile_shape(name, 0))
        tensors.append(Tensor(name, is_input, shape, engine.get_tensor_dtype(name).name, profile,
                              engine.get_tensor_format(name) == trt.TensorFormat.LINEAR))
    return tensors


def deserialize(trt, data: bytes, path: Path, allow_host_code: bool):
    """(runtime, engine, logger): the runtime and logger must outlive the engine."""
    log = logger(trt)
    runtime = trt.Runtime(log)
    runtime.engine_host_code_allowed = allow_host_code
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        hint = "" if allow_host_code else (" (an engine with host code, e.g. version-compatible, loads only with "
                                           f"{named('allow_engine_host_code')}, for engines you trust)")
        raise EngineMismatch(f"{path}: TensorRT {trt.__version__} cannot deserialise it: "
                             f"{'; '.join(log.errors) or 'no reason given'}{hint}")
    return runtime, engine, log


class TensorRTRunner(Runner):
    name = "tensorrt"
    memory_devices = ("cuda",)

    def __init__(self, path: Path, allow_host_code: bool = False) -> None:
        data = path.read_bytes()
        manifest = read_manifest(path)
        if manifest:  # checked before deserialising: that runs the engine's code
            check_file(manifest, path, hashlib.sha256(data).hexdigest())
        trt = import_tensorrt()
        self.gpu = gpu = open_gpu()
        if manifest:
            check_runtime(manifest, path, trt.__version__, gpu.compute_capability)
        self._runtime, self._engine, self._log = deserialize(trt, data, path, allow_host_code)
        self._tensors = describe(trt, self._engine)
        self._spec, self._out = plan_io(self._tensors, path)
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise ModelError(f"{path}: TensorRT could not create an execution context: {'; '.join(self._log.errors)}")
        most = self._spec.batch_range()[1]
        self._classes = self._out.shape[1]
        self._out_dtype = np.dtype(DTYPES[self._out.dtype])
        self._lock = threading.Lock()  # one context and one set of buffers: one engine call at a time
        d = gpu.driver
        self.stream = gpu.new_stream()
        frame = 3 * self._spec.height * self._spec.width * self._spec.dtype.itemsize
        (self._input,) = cuda_call(d.cuMemAlloc(most * frame))  # host batches are copied here
        (self._output,) = cuda_call(d.cuMemAlloc(most * self._classes * self._out_dtype.itemsize))
        self.tensorrt_version = trt.__version__
        self.manifest = manifest

    def input_spec(self) -> InputSpec:
        return self._spec

    def io_tensors(self) -> dict[str, list[dict]]:
        def info(t: Tensor) -> dict:
            return {"name": t.name, "shape": list(t.shape), "dtype": np.dtype(DTYPES[t.dtype]).name}
        return {"inputs": [info(t) for t in self._tensors if t.is_input],
                "outputs": [info(t) for t in self._tensors if not t.is_input]}

    def activation_bytes(self, batch: int, hw: tuple[int, int]) -> int:
        """None on the host: TensorRT's activations are in the GPU's memory (the engine's own)."""
        return 0

    def describe(self) -> dict:
        return {**super().describe(), "tensorrt": self.tensorrt_version, "gpu": self.gpu.name,
                "manifest": self.manifest is not None}

    def _execute(self, address: int, n: int) -> np.ndarray:
        """One engine call on ``n`` frames at ``address`` (device memory), on our stream."""
        s, ctx, d = self._spec, self._context, self.gpu.driver
        if ctx is None:
            raise ModelError("the TensorRT engine was closed (unloaded, or the server stops)")
        shape = (n, 3, s.height, s.width) if s.layout == "NCHW" else (n, s.height, s.width, 3)
        self.gpu.activate()
        if not ctx.set_input_shape(s.name, shape):
            raise ModelError(f"TensorRT refused input shape {list(shape)}: {'; '.join(self._log.errors)}")
        ctx.set_tensor_address(s.name, address)
        ctx.set_tensor_address(self._out.name, int(self._output))
        if not ctx.execute_async_v3(int(self.stream)):
            raise ModelError(f"TensorRT failed on a batch of {n}: {'; '.join(self._log.errors) or 'no reason given'}")
        out = np.empty((n, self._classes), self._out_dtype)
        cuda_call(d.cuMemcpyDtoHAsync(out.ctypes.data, self._output, out.nbytes, self.stream))
        cuda_call(d.cuStreamSynchronize(self.stream))
        return out

    def _run_bound(self, batch) -> np.ndarray:
        """A batch our kernels rendered on this GPU: TensorRT reads it where it lies (the renderer's stream
        has finished it)."""
        with self._lock:
            return self._execute(batch.address, batch.shape[0])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=self._spec.dtype)
        with self._lock:
            if self._context is None:
                raise ModelError("the TensorRT engine was closed (unloaded, or the server stops)")
            self.gpu.activate()
            cuda_call(self.gpu.driver.cuMemcpyHtoDAsync(self._input, batch.ctypes.data, batch.nbytes, self.stream))
            return self._execute(int(self._input), len(batch))

    def close(self) -> None:
        """After the engine call in progress, if any (the lock it holds): its buffers are freed here."""
        with self._lock:
            if self._context is None:
                return
            d = self.gpu.driver
            self.gpu.activate()
            self._context = self._engine = None  # the context goes before the engine, before the runtime
            for ptr in (self._input, self._output):
                d.cuMemFree(ptr)
            d.cuStreamDestroy(self.stream)


def _configure(trt, builder, build: BuildOptions):  # noqa: ANN001, ANN202 (TensorRT's types)
    """The builder configuration ``build`` asks for."""
    config = builder.create_builder_config()
    if build.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, build.workspace_mib << 20)
    if build.fp16:
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise ModelError(f"TensorRT {trt.__version__} has no FP16 builder flag (strongly typed networks): "
                             f"convert the ONNX model to float16 first, then build without {named('fp16')}")
        config.set_flag(trt.BuilderFlag.FP16)
    if build.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if build.hardware_compatible:
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    return config


def build_engine(onnx_path: Path, plan_path: Path, build: BuildOptions = BuildOptions()) -> dict:
    """Build ``plan_path`` from an ONNX model on this GPU as ``build`` says and write its manifest; returns
    the manifest."""
    trt = import_tensorrt()
    gpu = open_gpu()
    log = logger(trt)
    builder = trt.Builder(log)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10 and 11
    parser = trt.OnnxParser(network, log)
    onnx = onnx_path.read_bytes()
    if not parser.parse(onnx):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")
    config = _configure(trt, builder, build)
    inp = network.get_input(0)
    shape = tuple(inp.shape)
    if shape and shape[0] == -1:
        if -1 in shape[1:]:
            raise ModelError(f"{onnx_path}: input {inp.name!r} {list(shape)} is dynamic beyond its batch; "
                             "export the model for one image size")
        profile = builder.create_optimization_profile()
        top = (build.max_batch, *shape[1:])
        profile.set_shape(inp.name, (1, *shape[1:]), top, top)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(f"{onnx_path}: TensorRT could not build an engine: {'; '.join(log.errors) or 'no reason'}")
    data = bytes(serialized)
    _, engine, _ = deserialize(trt, data, plan_path, allow_host_code=build.version_compatible)  # ours: trusted
    tensors = describe(trt, engine)
    plan_io(tensors, plan_path)  # an engine the audit could not use is not written
    plan_path.write_bytes(data)
    manifest = {
        "schema": SCHEMA, "engine": plan_path.name, "engine_sha256": hashlib.sha256(data).hexdigest(),
        "tensorrt": trt.__version__, "gpu": gpu.name,
        "compute_capability": f"{gpu.compute_capability[0]}.{gpu.compute_capability[1]}",
        "version_compatible": build.version_compatible,
        "hardware_compatibility": "AMPERE_PLUS" if build.hardware_compatible else "NONE",
        "fp16": build.fp16, "max_batch": build.max_batch,
        "built_from": {"onnx": onnx_path.name, "sha256": hashlib.sha256(onnx).hexdigest()},
        "tensors": [t.to_json() for t in tensors]}
    manifest_path(plan_path).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
