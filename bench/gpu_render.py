"""Our render kernel on a GPU: against the memory limit and against the obvious PyTorch peer.

For `embed-black` and `crop` frames at 224x224x3, batch 256, float32 and float16, NCHW:
- ours: one `render` launch per batch (tables and sources already on the device, as in an audit where
  they are uploaded once per batch/image), timed with CUDA events over a CUDA graph of many launches
  (GPU time; launched one by one from Python the host's launch cost would be measured); and the whole
  `GpuRenderer.render` call the audit makes (pack and upload the tables, launch, wait), by the clock;
- the limit: bytes the kernel writes / the GPU's measured write bandwidth (cuMemsetD32 of a large
  buffer); printed as our fraction of it;
- the peer: PyTorch on the same GPU, `F.interpolate(antialias=True)` (bilinear) of each image once per
  pair, padded into the canvas at each frame's place, normalised, stacked: as batched as PyTorch allows
  for per-image sizes and places. Printed as our speedup, whole call against whole call.

    python bench/gpu_render.py [--batch 256] [--reps 50]
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from shiftaudit.kernels import ops
from shiftaudit.kernels.batch import pack
from shiftaudit.kernels.launch import cuda_call
from shiftaudit.kernels.memory import DeviceMemory
from shiftaudit.server.engine.files import list_images
from shiftaudit.server.engine.images import read
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.engine.protocols import plan
from shiftaudit.server.engine.render.gpu import GpuRenderer
from shiftaudit.server.engine.taps import frame_tables

ROOT = Path(__file__).resolve().parent.parent


def frames_for(protocol: str, batch: int):
    """`batch` frames of the example photographs (pairs of different images, several per image)."""
    images = [read(p) for p in list_images(ROOT / "examples" / "images")]
    cfg = AuditOptions(canvas=(224, 224), pairs_per_image=-(-batch // (2 * len(images))))
    frames = [(im, p) for im in images for u in plan(protocol, im.size, im.digest, cfg) for p in u.frames]
    return frames[:batch]


def time_events(memory: DeviceMemory, fn, reps: int) -> float:
    """Seconds per call of ``fn`` (which enqueues GPU work on the memory's stream), by CUDA events."""
    driver = memory.driver
    start, stop = cuda_call(driver.cuEventCreate(0))[0], cuda_call(driver.cuEventCreate(0))[0]
    fn()
    cuda_call(driver.cuCtxSynchronize())
    cuda_call(driver.cuEventRecord(start, memory.stream))
    for _ in range(reps):
        fn()
    cuda_call(driver.cuEventRecord(stop, memory.stream))
    cuda_call(driver.cuEventSynchronize(stop))
    (ms,) = cuda_call(driver.cuEventElapsedTime(start, stop))
    return ms / 1e3 / reps


def time_graph(memory: DeviceMemory, fn, reps: int) -> float:
    """Seconds per call of ``fn`` on the GPU alone: ``reps`` calls captured in a CUDA graph and replayed,
    so the host's launch overhead (Python) does not leave the GPU idle between calls."""
    driver = memory.driver
    mode = driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
    cuda_call(driver.cuStreamBeginCapture(memory.stream, mode))
    for _ in range(reps):
        fn()
    (graph,) = cuda_call(driver.cuStreamEndCapture(memory.stream))
    (replay,) = cuda_call(driver.cuGraphInstantiate(graph, 0))
    return time_events(memory, lambda: cuda_call(driver.cuGraphLaunch(replay, memory.stream)), 3) / reps


def ours(memory: DeviceMemory, renderer: GpuRenderer, frames, half: bool, reps: int) -> tuple[float, float, int]:
    """(seconds per batch of the render launch alone, of a whole `GpuRenderer.render` call as the
    audit makes it: tables computed, packed and uploaded, launch, wait for the stream; bytes written)."""
    norm = Preprocessing().normalisation()
    bufs = [renderer.kernels.source(im.digest, im.pixels) for im, _ in frames]
    packed = pack([frame_tables(p) for _, p in frames], [im.pixels.shape[1] for im, _ in frames],
                  [memory.address(b) for b in bufs])
    n, canvas = len(frames), packed.canvas
    out = memory.empty(n * 3 * canvas[0] * canvas[1] * (2 if half else 4))
    taps, table = memory.upload(packed.taps), memory.upload(packed.frames)
    a = memory.address
    seconds = time_graph(memory, lambda: ops.render(memory.launch, a(taps), a(table), n, canvas, norm, True, half,
                                                    a(out)), reps)
    dtype = np.float16 if half else np.float32
    renderer.render(frames, norm, "NCHW", dtype)
    start = time.perf_counter()
    for _ in range(reps):
        renderer.render(frames, norm, "NCHW", dtype)
    return seconds, (time.perf_counter() - start) / reps, out.nbytes


def write_bandwidth(memory: DeviceMemory, reps: int) -> float:
    """Bytes/s of cuMemsetD32 over 1 GiB: what writing memory can reach on this GPU."""
    buf = memory.empty(1 << 30)
    seconds = time_events(memory, lambda: cuda_call(memory.driver.cuMemsetD32Async(buf.ptr, 0, buf.nbytes // 4,
                                                                            memory.stream)), reps)
    return buf.nbytes / seconds


def pytorch_peer(frames, half: bool, reps: int) -> float:
    """Seconds per batch of the same frames with PyTorch on the GPU."""
    import torch
    import torch.nn.functional as F

    dev = torch.device("cuda")
    pre = Preprocessing()
    mean = torch.tensor(pre.mean, device=dev).view(3, 1, 1) * 255
    std = torch.tensor(pre.std, device=dev).view(3, 1, 1) * 255
    sources = {im.digest: torch.from_numpy(im.pixels).to(dev).permute(2, 0, 1)[None].float() for im, _ in frames}
    h, w = frames[0][1].canvas
    dtype = torch.float16 if half else torch.float32

    def run():
        cache = {}
        out = []
        for im, p in frames:
            sx, sy, sw, sh = p.src
            x, y, dw, dh = (int(v) for v in p.dst)
            key = (im.digest, p.src, dw, dh)
            if key not in cache:
                crop = sources[im.digest][:, :, sy:sy + sh, sx:sx + sw]
                cache[key] = F.interpolate(crop, size=(dh, dw), mode="bilinear", antialias=True, align_corners=False)
            block = cache[key][0]
            # pad (or crop, for windows starting left/above the canvas) the block into the canvas
            left, top = x, y
            right, bottom = w - (x + dw), h - (y + dh)
            canvas = F.pad(block, (left, right, top, bottom))
            out.append(((canvas - mean) / std).to(dtype))
        return torch.stack(out)

    run()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        run()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / 1e3 / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    renderer = GpuRenderer()
    memory = renderer.memory
    limit = write_bandwidth(memory, 20)
    print(f"{memory.launch.name} ({memory.launch.arch}); measured write bandwidth {limit / 1e9:.0f} GB/s")
    print(f"{'protocol':12} {'dtype':8} {'ours img/s':>11} {'of limit':>9} {'render() img/s':>15} "
          f"{'PyTorch img/s':>14} {'speedup':>8}")
    for protocol in ("embed-black", "crop"):
        frames = frames_for(protocol, args.batch)
        for half in (False, True):
            seconds, call, nbytes = ours(memory, renderer, frames, half, args.reps)
            peer = pytorch_peer(frames, half, max(3, args.reps // 10))
            fraction = (nbytes / seconds) / limit
            print(f"{protocol:12} {'float16' if half else 'float32':8} {len(frames) / seconds:11.0f} "
                  f"{fraction:9.2f} {len(frames) / call:15.0f} {len(frames) / peer:14.0f} {peer / call:7.1f}x")
    print("command: python " + shlex.join(sys.argv))


if __name__ == "__main__":
    main()
