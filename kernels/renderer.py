"""Rendering a batch with the kernels: sources uploaded once per image, tables per batch, one render
launch (plus canvas, inpainting passes and normalisation for frames that are inpainted); the batch
stays where the memory keeps it, for the engine to read there or copy to the host."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from itertools import groupby

import numpy as np

from . import ops, reference
from .batch import pack, rgbx
from .memory import DeviceArray, HostMemory, Memory
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


class HostRenderer:
    """Frames -> the engine's input batch with the kernels' host build: the CPU renderer. Where a GPU renders
    each frame in one gather, a CPU core renders each distinct block once (the two frames of a translate
    pair, a crop's window: `ops.resample`'s two separable passes), places it on every frame that shows it
    (`ops.place`) and inpaints a rectangle of known pixels ring by ring (`ops.inpaint_ring`): the same float32
    operations in the same order as the GPU's kernels, so the same bits. The few frames whose known pixels
    are no rectangle take the GPU's own kernels, built for the host. Sources are read where they are (RGB);
    a batch is rendered image by image, so its scratch memory is one image's blocks and one band (the
    pipeline's memory budget counts the images and the batch). Batches are host arrays; ctypes lets go of
    the GIL while a kernel runs, so an engine's Python threads run meanwhile."""

    def __init__(self) -> None:
        self.memory = HostMemory()
        self.launch = self.memory.launch

    def render(self, sources: Sequence[Source], frames: Sequence[FrameTables], norm: Normalisation, layout: str,
               dtype: np.dtype) -> np.ndarray:
        """Frame ``i`` drawn from ``sources[i]`` -> the model input batch, (n, 3, H, W) or (n, H, W, 3)."""
        nchw, half = layout == "NCHW", np.dtype(dtype) == np.float16
        out = reference.empty_batch(len(frames), frames[0].canvas, nchw, np.dtype(np.float16 if half else np.float32))
        band = np.empty(max(_band_floats(f) for f in frames), np.float32)  # one, reused by every block
        general = []
        for _, group in groupby(range(len(frames)), key=lambda i: sources[i][0]):
            slots = list(group)
            general += self._image(sources[slots[0]][1], slots, frames, band, norm, nchw, half, out)
        if general:  # known pixels that are no rectangle: the GPU's kernels, on the host
            some = KernelRenderer(self.memory).render([sources[i] for i in general], [frames[i] for i in general],
                                                      norm, layout, dtype)
            out[general] = some.to_host()
        return out

    def _image(self, pixels: np.ndarray, slots: list[int], frames: Sequence[FrameTables], band: np.ndarray,
               norm: Normalisation, nchw: bool, half: bool, out: np.ndarray) -> list[int]:
        """The frames ``slots`` of one image into their slots of ``out``; returns those left to the general
        inpainting."""
        pixels = np.ascontiguousarray(pixels)
        blocks: dict[tuple, np.ndarray] = {}  # frames with the same tables show the same block
        placed, rings, keep, general = [], [], [], []
        for slot in slots:
            frame = frames[slot]
            name = tuple(id(a) for t in (frame.rows, frame.cols) for a in (t.index, t.weight))
            if name not in blocks:
                blocks[name] = self._resample(pixels, frame, band)
            block = blocks[name]
            if not frame.inpaint:
                placed.append([block.ctypes.data, *block.shape[:2], frame.rows.start, frame.cols.start, slot])
                continue
            rect = reference.rectangle(reference.known_mask(frame.rows, frame.cols, frame.canvas))
            if rect is None:
                general.append(slot)
                continue
            canvas = self._known(block, frame, rect)
            keep.append(canvas)
            rings.append([canvas.ctypes.data, *rect])
            placed.append([canvas.ctypes.data, *frame.canvas, 0, 0, slot])
        self._inpaint(rings, frames[slots[0]].canvas)
        if placed:
            table = np.array(placed, np.int64)
            ops.place(self.launch, table.ctypes.data, len(placed), frames[slots[0]].canvas, norm, nchw, half,
                      out.ctypes.data)
        return general

    def _resample(self, pixels: np.ndarray, frame: FrameTables, band: np.ndarray) -> np.ndarray:
        """A frame's block, (rows, columns, 4) float32 RGBX, through the scratch ``band``."""
        r, c = frame.rows, frame.cols
        r0, r1 = int(r.index.min()), int(r.index.max()) + 1
        block = np.empty((r.index.shape[0], c.index.shape[0], 4), np.float32)
        ci, cw, ri, rw = (np.ascontiguousarray(a, t) for a, t in ((c.index, np.int32), (c.weight, np.float32),
                                                                 (r.index, np.int32), (r.weight, np.float32)))
        row = np.array([pixels.ctypes.data, pixels.shape[1], band.ctypes.data, r0, r1 - r0, ci.ctypes.data,
                        cw.ctypes.data, *c.index.shape, ri.ctypes.data, rw.ctypes.data, *r.index.shape,
                        block.ctypes.data], np.int64)
        ops.resample(self.launch, row.ctypes.data, 1, (r1 - r0) * c.index.shape[0], r.index.shape[0])
        return block

    @staticmethod
    def _known(block: np.ndarray, frame: FrameTables, rect: tuple[int, int, int, int]) -> np.ndarray:
        """A canvas to inpaint: the block's fully covered pixels (the rectangle ``rect``) with weight 1 in
        the fourth lane; the rest is written by the ring passes."""
        y0, y1, x0, x1 = rect
        canvas = np.empty((*frame.canvas, 4), np.float32)
        by, bx = y0 - frame.rows.start, x0 - frame.cols.start
        canvas[y0:y1, x0:x1, :3] = block[by:by + y1 - y0, bx:bx + x1 - x0, :3]
        canvas[y0:y1, x0:x1, 3] = 1
        return canvas

    def _inpaint(self, rings: list[list[int]], canvas: tuple[int, int]) -> None:
        """Ring passes until every canvas is filled (its known rectangle grown to the whole canvas)."""
        if not rings:
            return
        table = np.array(rings, np.int64)
        h, w = canvas
        reach = max(max(y0, h - y1, x0, w - x1) for _, y0, y1, x0, x1 in rings)
        r = len(BINOMIAL5) // 2
        taps = np.ascontiguousarray(BINOMIAL5)
        for step in range(-(-reach // r)):
            ops.inpaint_ring(self.launch, table.ctypes.data, len(rings), canvas, taps.ctypes.data, len(taps), step)


def _band_floats(frame: FrameTables) -> int:
    """The scratch a frame's column pass needs: the source rows its row taps read, by its columns, RGBX."""
    return (int(frame.rows.index.max()) - int(frame.rows.index.min()) + 1) * frame.cols.index.shape[0] * 4
