"""Rendering a batch with the kernels: sources uploaded once per image, tables per batch, one render
launch (plus canvas, inpainting passes and normalisation for frames that are inpainted); the batch
stays where the memory keeps it, for the engine to read there or copy to the host."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from . import ops
from .batch import pack, rgbx
from .memory import DeviceArray, Memory
from .reference import BINOMIAL5, passes_needed
from .tables import FrameTables, Normalisation

Source = tuple[str, np.ndarray]  # a key naming the image (its content hash), and its (H, W, 3) uint8 RGB pixels


class KernelRenderer:
    """Frames -> the engine's input batch, with our kernels. The most recent source images stay uploaded
    (an image's frames may span batches), up to ``keep_bytes`` of device memory."""

    def __init__(self, memory: Memory, keep_bytes: int = 1 << 30, poison: bool = False) -> None:
        self.memory = memory
        self.poison = poison  # fill outputs with NaN first, so a pixel the kernel misses shows
        self.sources: OrderedDict[str, tuple[object, int]] = OrderedDict()  # key -> (buffer, bytes)
        self.keep_bytes = keep_bytes
        self._lock = threading.Lock()
        self.kernel = memory.upload(BINOMIAL5)

    def source(self, key: str, pixels: np.ndarray):
        """The image's device copy, RGBX. Concurrent audits share the renderer, hence the lock; an evicted
        buffer stays alive while a batch in flight still holds it."""
        with self._lock:
            buf, size = self.sources.pop(key, None) or (self.memory.upload(rgbx(pixels)), pixels.size * 4 // 3)
            self.sources[key] = (buf, size)
            while len(self.sources) > 1 and sum(s for _, s in self.sources.values()) > self.keep_bytes:
                self.sources.popitem(last=False)
            return buf

    def render(self, sources: Sequence[Source], frames: Sequence[FrameTables], norm: Normalisation, layout: str,
               dtype: np.dtype) -> DeviceArray:
        """Frame ``i`` drawn from ``sources[i]`` -> the model input batch, where the memory keeps it."""
        mem = self.memory
        mem.activate()
        bufs = [self.source(key, pixels) for key, pixels in sources]
        packed = pack(frames, [pixels.shape[1] for _, pixels in sources], [mem.address(b) for b in bufs])
        n, canvas = len(frames), packed.canvas
        nchw, half = layout == "NCHW", np.dtype(dtype) == np.float16
        out = mem.empty(n * 3 * canvas[0] * canvas[1] * (2 if half else 4))
        if self.poison:
            mem.poison(out)
        taps, table = mem.upload(packed.taps), mem.upload(packed.frames)
        ops.render(mem.launch, mem.address(taps), mem.address(table), n, canvas, norm, nchw, half, mem.address(out))
        slots = np.nonzero(packed.inpaint)[0].astype(np.int32)
        if len(slots):
            self._inpaint(taps, packed.frames[slots], slots, canvas, norm, nchw, half, out)
        mem.finish()  # engines on other streams (ONNX Runtime's, TensorRT's) do not wait for ours
        shape = (n, 3, *canvas) if nchw else (n, *canvas, 3)
        return DeviceArray(out, shape, np.dtype(np.float16 if half else np.float32), mem)

    def _inpaint(self, taps, frames: np.ndarray, slots: np.ndarray, canvas: tuple[int, int], norm: Normalisation,
                 nchw: bool, half: bool, out) -> None:
        """Render the frames' pixel-space canvases, inpaint them, normalise them into their slots."""
        mem = self.memory
        m, pixels = len(slots), canvas[0] * canvas[1]
        table, slot = mem.upload(frames), mem.upload(slots)
        values = [mem.empty(m * pixels * 12), mem.empty(m * pixels * 12)]
        known = [mem.empty(m * pixels), mem.empty(m * pixels)]
        a = mem.address
        ops.render_canvas(mem.launch, a(taps), a(table), m, canvas, a(values[0]), a(known[0]))
        passes = passes_needed(canvas)
        for i in range(passes):
            src, dst = i % 2, 1 - i % 2
            ops.inpaint_pass(mem.launch, a(values[src]), a(known[src]), a(values[dst]), a(known[dst]), m, canvas,
                             a(self.kernel), len(BINOMIAL5))
        ops.normalise(mem.launch, a(values[passes % 2]), a(slot), m, canvas, norm, nchw, half, a(out))
