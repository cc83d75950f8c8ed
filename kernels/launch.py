"""Launching the kernels, on the GPU (CUDA driver API through cuda-python) or on the host (their C++
build). Both launchers take the argument lists the typed launchers of `ops.py` build, so what the
host check runs is what the GPU runs. `Gpu` and `cuda_call` are public: the TensorRT runner shares
the GPU's primary context and reads our batches in place."""
from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence

from . import cubin, host_library, nvrtc_version

Arg = tuple[type, int | float]  # (ctypes type, value); pointers are addresses
KERNEL_FILE = {"render": "render", "render_canvas": "render", "normalise": "render", "resample_columns": "render",
               "resample_rows": "render", "place": "render", "inpaint_pass": "inpaint", "inpaint_ring": "inpaint",
               "score_rows": "score", "score_pstar": "score"}
RENDERING = ("render", "inpaint")  # what an audit launches: loaded when a device launcher is made
BLOCK = 256


class HostLauncher:
    """Runs a kernel's host build: one thread walks the whole grid-stride loops."""

    def __call__(self, name: str, args: Sequence[Arg], elements: int, frames: int = 1) -> None:
        fn = getattr(host_library(KERNEL_FILE[name]), name)
        fn.argtypes = [t for t, _ in args]
        fn.restype = None
        fn(*(v for _, v in args))


def cuda_call(result) -> tuple:
    """The values of a cuda-python driver call's result tuple; a CUDA error raises RuntimeError."""
    err = result[0]
    if int(err) != 0:
        from cuda.bindings import driver

        _, text = driver.cuGetErrorString(err)
        raise RuntimeError(f"CUDA: {err.name}: {text.decode() if text else ''}")
    return result[1:]


class Gpu:
    """A GPU's primary context, made current in the calling thread, and what it is. The renderer and the
    TensorRT runner share the primary context, so a batch one writes is at the address the other reads."""

    def __init__(self, ordinal: int = 0) -> None:
        from cuda.bindings import driver

        self.driver = driver
        cuda_call(driver.cuInit(0))
        (self.device,) = cuda_call(driver.cuDeviceGet(ordinal))
        (self.context,) = cuda_call(driver.cuDevicePrimaryCtxRetain(self.device))
        self.activate()
        attr = driver.CUdevice_attribute
        (major,) = cuda_call(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                                         self.device))
        (minor,) = cuda_call(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                                                         self.device))
        self.compute_capability = (major, minor)
        self.arch = f"sm_{major}{minor}"
        (version,) = cuda_call(driver.cuDriverGetVersion())
        self.driver_version = f"{version // 1000}.{version % 1000 // 10}"
        (name,) = cuda_call(driver.cuDeviceGetName(100, self.device))
        self.name = name.split(b"\0")[0].decode()
        (self.sms,) = cuda_call(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                                                            self.device))

    def activate(self) -> None:
        """Make the context current in the calling thread (audits render and infer in worker threads)."""
        cuda_call(self.driver.cuCtxSetCurrent(self.context))

    def new_stream(self):
        """A new stream that never waits for the legacy default stream (nor others for it)."""
        return cuda_call(self.driver.cuStreamCreate(self.driver.CUstream_flags.CU_STREAM_NON_BLOCKING))[0]


class DeviceLauncher(Gpu):
    """Compiles (or takes from the cache) and loads the rendering kernels at construction, so a device
    that cannot run them is found before any audit starts; the others (scoring, which only the check
    runs) on their first launch. Launches go to our own non-blocking ``stream``, which never waits for
    an engine's streams (nor they for it)."""

    def __init__(self, device: int = 0) -> None:
        super().__init__(device)
        self.stream = self.new_stream()
        self.nvrtc = nvrtc_version()
        self.blocks = self.sms * 16  # enough resident blocks; grid-stride loops cover the rest
        self._modules: dict[str, object] = {}
        self._functions: dict[str, object] = {}
        self._lock = threading.Lock()
        for name, file in KERNEL_FILE.items():
            if file in RENDERING:
                self._function(name)

    def _function(self, name: str):
        """The kernel ``name``, its module compiled and loaded on first use."""
        with self._lock:
            if name not in self._functions:
                file = KERNEL_FILE[name]
                if file not in self._modules:
                    self._modules[file] = cuda_call(self.driver.cuModuleLoadData(cubin(file, self.arch)))[0]
                self._functions[name] = cuda_call(self.driver.cuModuleGetFunction(self._modules[file],
                                                                                   name.encode()))[0]
            return self._functions[name]

    def __call__(self, name: str, args: Sequence[Arg], elements: int, frames: int = 1) -> None:
        """``elements`` per frame along the grid's x, ``frames`` along its y (render.cu's loops)."""
        function = self._function(name)
        values = [t(v) for t, v in args]
        pointers = (ctypes.c_void_p * len(values))(*(ctypes.addressof(v) for v in values))
        grid_y = max(1, min(frames, 65535))
        grid_x = max(1, min(-(-elements // BLOCK), -(-self.blocks // grid_y)))
        cuda_call(self.driver.cuLaunchKernel(function, grid_x, grid_y, 1, BLOCK, 1, 1, 0, self.stream,
                                             ctypes.addressof(pointers), 0))
