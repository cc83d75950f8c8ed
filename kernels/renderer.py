"""Rendering a batch with the kernels: sources uploaded once per image, tables per batch, one render
launch (plus canvas, inpainting passes and normalisation for frames that are inpainted), then the
batch either stays on the device (an engine reads it there) or is copied to the host.

The memory backend decides where "device" memory is: the GPU (``DeviceMemory``), or host arrays for
the host build of the kernels (``HostMemory``), which is how this module is checked without a GPU.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shiftaudit.server.engine.geometry import Placement
from shiftaudit.server.engine.images import SourceImage
from shiftaudit.server.engine.preprocessing import Normalisation
from shiftaudit.server.engine.render.inpaint import BINOMIAL5, passes_needed

from .batch import pack, rgbx
from .launch import DeviceLauncher, HostLauncher, I, P, norm_args


class HostMemory:
    """"Device" buffers that are NumPy arrays; addresses are host pointers."""

    device = "cpu"

    def __init__(self) -> None:
        self.launch = HostLauncher()

    def activate(self) -> None:
        pass

    def finish(self) -> None:
        pass

    def upload(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array).copy()

    def empty(self, nbytes: int) -> np.ndarray:
        return np.empty(nbytes, np.uint8)

    @staticmethod
    def address(buf: np.ndarray) -> int:
        return buf.ctypes.data

    def download(self, buf: np.ndarray, out: np.ndarray) -> None:
        out.view(np.uint8).reshape(-1)[:] = buf.view(np.uint8).reshape(-1)[:out.nbytes]

    def poison(self, buf: np.ndarray) -> None:
        buf.view(np.uint8)[:] = 0xFF


class DeviceBuffer:
    """Memory from our stream-ordered pool: allocated and freed in the order of our stream, so a batch's
    buffer returns to the pool without stalling the device (cuMemFree would synchronise it)."""

    def __init__(self, memory: DeviceMemory, nbytes: int) -> None:
        from .launch import _check

        self.memory, self.nbytes = memory, nbytes
        (self.ptr,) = _check(memory.driver.cuMemAllocFromPoolAsync(max(nbytes, 1), memory.pool, memory.stream))

    def __del__(self) -> None:
        try:  # any thread may drop the last reference: make our context current there
            self.memory.activate()
            self.memory.driver.cuMemFreeAsync(self.ptr, self.memory.stream)
        except Exception:  # interpreter shutdown
            pass


class DeviceMemory:
    """GPU buffers from a pool of our own, and the launcher's non-blocking stream for every copy and
    launch: batch k+1 renders while an engine on the GPU runs batch k on its own stream, and
    ``finish`` waits for our stream only. Host arrays are copied in as they are (the driver stages
    pageable memory, so the caller may drop them when the call returns)."""

    device = "cuda"

    def __init__(self, device: int = 0) -> None:
        from cuda.bindings import driver

        from .launch import _check

        self.driver = driver
        self.launch = DeviceLauncher(device)
        self.stream = self.launch.stream
        props = driver.CUmemPoolProps()
        props.allocType = driver.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
        props.location.type = driver.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        props.location.id = device
        (self.pool,) = _check(driver.cuMemPoolCreate(props))
        _check(driver.cuMemPoolSetAttribute(self.pool, driver.CUmemPool_attribute.CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                                            driver.cuuint64_t(2**64 - 1)))  # keep freed batches for reuse

    def activate(self) -> None:
        self.launch.activate()

    def finish(self) -> None:
        from .launch import _check

        _check(self.driver.cuStreamSynchronize(self.stream))

    def upload(self, array: np.ndarray) -> DeviceBuffer:
        from .launch import _check

        array = np.ascontiguousarray(array)
        buf = DeviceBuffer(self, array.nbytes)
        _check(self.driver.cuMemcpyHtoDAsync(buf.ptr, array.ctypes.data, array.nbytes, self.stream))
        return buf

    def empty(self, nbytes: int) -> DeviceBuffer:
        return DeviceBuffer(self, nbytes)

    @staticmethod
    def address(buf: DeviceBuffer) -> int:
        return int(buf.ptr)

    def download(self, buf: DeviceBuffer, out: np.ndarray) -> None:
        from .launch import _check

        self.activate()
        _check(self.driver.cuMemcpyDtoHAsync(out.ctypes.data, buf.ptr, out.nbytes, self.stream))
        self.finish()

    def poison(self, buf: DeviceBuffer) -> None:
        from .launch import _check

        _check(self.driver.cuMemsetD8Async(buf.ptr, 0xFF, buf.nbytes, self.stream))


@dataclass(frozen=True)
class Rendered:
    """A batch where the kernels left it; an engine binds ``address`` directly or calls ``to_host``."""

    buffer: object  # DeviceBuffer or host array
    shape: tuple[int, ...]
    dtype: np.dtype
    memory: HostMemory | DeviceMemory

    @property
    def address(self) -> int:
        return self.memory.address(self.buffer)

    @property
    def device(self) -> str:
        return self.memory.device

    def to_host(self) -> np.ndarray:
        host = np.empty(self.shape, self.dtype)
        self.memory.download(self.buffer, host)
        return host


class KernelRenderer:
    """Frames -> the engine's input batch, with our kernels. The ``keep`` most recent source images
    stay uploaded (an image's units may span batches)."""

    def __init__(self, memory: HostMemory | DeviceMemory, keep: int = 64, poison: bool = False) -> None:
        self.memory = memory
        self.poison = poison  # fill outputs with NaN first, so a pixel the kernel misses shows
        self.sources: OrderedDict[str, object] = OrderedDict()
        self.keep = keep
        self._lock = threading.Lock()
        self.taps = memory.upload(BINOMIAL5)

    def _source(self, digest: str, pixels: np.ndarray):
        """The image's device copy, RGBX. Concurrent audits share the renderer, hence the lock; an evicted
        buffer stays alive while a batch in flight still holds it."""
        with self._lock:
            buf = self.sources.pop(digest, None)
            if buf is None:
                buf = self.memory.upload(rgbx(pixels))
            self.sources[digest] = buf
            while len(self.sources) > self.keep:
                self.sources.popitem(last=False)
            return buf

    def __call__(self, frames: Sequence[tuple[SourceImage, Placement]], norm: Normalisation, layout: str,
                 dtype: np.dtype) -> np.ndarray:
        """A batch rendered by the kernels and copied to the host (for an engine that runs there)."""
        return self.render(frames, norm, layout, dtype).to_host()

    def render(self, frames: Sequence[tuple[SourceImage, Placement]], norm: Normalisation, layout: str,
               dtype: np.dtype) -> Rendered:
        """(source image, placement) per frame -> the model input batch, where the memory keeps it."""
        mem, launch = self.memory, self.memory.launch
        mem.activate()
        placements = [p for _, p in frames]
        bufs = [self._source(im.digest, im.pixels) for im, _ in frames]
        packed = pack(placements, [im.pixels.shape[1] for im, _ in frames], [mem.address(b) for b in bufs])
        n, (h, w) = len(frames), packed.canvas
        nchw, half = layout == "NCHW", np.dtype(dtype) == np.float16
        shape = (n, 3, h, w) if nchw else (n, h, w, 3)
        out = mem.empty(n * 3 * h * w * (2 if half else 4))
        if self.poison:
            mem.poison(out)
        taps, table = mem.upload(packed.taps), mem.upload(packed.frames)
        tables = [(P, mem.address(taps))]
        normal = norm_args(norm.scale, norm.bias, norm.channel_order == "BGR", nchw, half)
        launch("render", [*tables, (P, mem.address(table)), (I, n), (I, h), (I, w), *normal, (P, mem.address(out))],
               h * w, n)
        slots = np.nonzero(packed.inpaint)[0].astype(np.int32)
        if len(slots):
            self._inpaint(packed.frames[slots], slots, tables, (h, w), normal, out)
        mem.finish()  # engines on other streams (ONNX Runtime's, TensorRT's) do not wait for ours
        return Rendered(out, shape, np.dtype(np.float16 if half else np.float32), mem)

    def _inpaint(self, frames: np.ndarray, slots: np.ndarray, tables, hw, normal, out) -> None:
        """Render the frames' pixel-space canvases, inpaint them, normalise them into their slots."""
        mem, launch = self.memory, self.memory.launch
        m, (h, w) = len(slots), hw
        table, slot = mem.upload(frames), mem.upload(slots)
        canvas = [mem.empty(m * h * w * 12), mem.empty(m * h * w * 12)]
        known = [mem.empty(m * h * w), mem.empty(m * h * w)]
        launch("render_canvas", [*tables, (P, mem.address(table)), (I, m), (I, h), (I, w),
                                 (P, mem.address(canvas[0])), (P, mem.address(known[0]))], h * w, m)
        for i in range(passes_needed(hw)):
            a, b = i % 2, 1 - i % 2
            launch("inpaint_pass", [(P, mem.address(canvas[a])), (P, mem.address(known[a])),
                                    (P, mem.address(canvas[b])), (P, mem.address(known[b])), (I, m), (I, h),
                                    (I, w), (P, mem.address(self.taps)), (I, len(BINOMIAL5))], h * w, m)
        final = canvas[passes_needed(hw) % 2]
        launch("normalise", [(P, mem.address(final)), (P, mem.address(slot)), (I, m), (I, h), (I, w), *normal,
                             (P, mem.address(out))], h * w, m)

