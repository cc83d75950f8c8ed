"""Launching the kernels, on the GPU (CUDA driver API through cuda-python) or on the host (their
C++ build). Both take the same argument lists, built once here per kernel, so what the host check
runs is what the GPU runs."""
from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np

from . import cubin, host_library, nvrtc_version

Arg = tuple[type, int | float]  # (ctypes type, value); pointers are addresses
P, I, F = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
KERNEL_FILE = {"render": "render", "render_canvas": "render", "normalise": "render", "inpaint_pass": "inpaint",
               "score_rows": "score", "score_pstar": "score"}
BLOCK = 256


def norm_args(scale: np.ndarray, bias: np.ndarray, bgr: bool, nchw: bool, half: bool) -> list[Arg]:
    return [*((F, float(s)) for s in scale), *((F, float(b)) for b in bias), (I, int(bgr)), (I, int(nchw)),
            (I, int(half))]


class HostLauncher:
    """Runs a kernel's host build: one thread walks the whole grid-stride loops."""

    def __call__(self, name: str, args: Sequence[Arg], elements: int, frames: int = 1) -> None:
        fn = getattr(host_library(KERNEL_FILE[name]), name)
        fn.argtypes = [t for t, _ in args]
        fn.restype = None
        fn(*(v for _, v in args))


def _check(result) -> tuple:
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
        _check(driver.cuInit(0))
        (self.device,) = _check(driver.cuDeviceGet(ordinal))
        (self.context,) = _check(driver.cuDevicePrimaryCtxRetain(self.device))
        self.activate()
        attr = driver.CUdevice_attribute
        (major,) = _check(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, self.device))
        (minor,) = _check(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, self.device))
        self.compute_capability = (major, minor)
        self.arch = f"sm_{major}{minor}"
        (version,) = _check(driver.cuDriverGetVersion())
        self.driver_version = f"{version // 1000}.{version % 1000 // 10}"
        (name,) = _check(driver.cuDeviceGetName(100, self.device))
        self.name = name.split(b"\0")[0].decode()
        (self.sms,) = _check(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, self.device))

    def activate(self) -> None:
        """Make the context current in the calling thread (audits render and infer in worker threads)."""
        _check(self.driver.cuCtxSetCurrent(self.context))

    def new_stream(self):
        """A new stream that never waits for the legacy default stream (nor others for it)."""
        return _check(self.driver.cuStreamCreate(self.driver.CUstream_flags.CU_STREAM_NON_BLOCKING))[0]


class DeviceLauncher(Gpu):
    """Compiles (or takes from the cache) and loads every kernel for the device at construction, so a
    device that cannot run them is found before any audit starts. Launches go to our own non-blocking
    ``stream``, which never waits for an engine's streams (nor they for it)."""

    def __init__(self, device: int = 0) -> None:
        super().__init__(device)
        driver = self.driver
        self.stream = self.new_stream()
        self.nvrtc = nvrtc_version()
        self.blocks = self.sms * 16  # enough resident blocks; grid-stride loops cover the rest
        self._modules = {f: _check(driver.cuModuleLoadData(cubin(f, self.arch)))[0] for f in set(KERNEL_FILE.values())}
        self._functions = {name: _check(driver.cuModuleGetFunction(self._modules[f], name.encode()))[0]
                           for name, f in KERNEL_FILE.items()}  # all compiled and loaded up front

    def __call__(self, name: str, args: Sequence[Arg], elements: int, frames: int = 1) -> None:
        """``elements`` per frame along the grid's x, ``frames`` along its y (render.cu's loops)."""
        values = [t(v) for t, v in args]
        pointers = (ctypes.c_void_p * len(values))(*(ctypes.addressof(v) for v in values))
        grid_y = max(1, min(frames, 65535))
        grid_x = max(1, min(-(-elements // BLOCK), -(-self.blocks // grid_y)))
        _check(self.driver.cuLaunchKernel(self._functions[name], grid_x, grid_y, 1, BLOCK, 1, 1, 0,
                                          self.stream, ctypes.addressof(pointers), 0))
