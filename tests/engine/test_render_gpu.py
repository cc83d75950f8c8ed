"""The CPU renderers against their definition; and the GPU renderer (our kernels behind the engine's
renderer contract), which renders every protocol's frames as the CPU renderer (the kernels' host build)
does, bit for bit, and as the NumPy reference does, inpainted frames within 1e-3 levels. Here on the
kernels' host build; on a GPU (marked gpu) on the device, where a whole audit must also equal the CPU's."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from shiftaudit.client import audit
from shiftaudit.kernels.check import INPAINT_TOLERANCE
from shiftaudit.kernels.memory import HostMemory
from shiftaudit.kernels.reference import normalise
from shiftaudit.server.engine.images import SourceImage
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.engine.protocols import PROTOCOLS, TooSmall, plan
from shiftaudit.server.engine.render.cpu import CpuRenderer, reference_batch, render_frames
from shiftaudit.server.engine.render.gpu import GpuRenderer
from shiftaudit.server.engine.runners import EngineOptions
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL

CPU = EngineOptions(device="cpu")

PREPROCESSING = (Preprocessing(), Preprocessing(mean=(127, 120, 110), std=(128, 60, 70), pixel_range=255,
                                                channel_order="BGR"))


def protocol_frames(rng: np.random.Generator, filt: str, canvas: tuple[int, int]) -> list:
    """(source image, placement) of every protocol's frames for a few random images."""
    frames = []
    cfg = AuditOptions(canvas=canvas, size=24, sweep_pixels=2, sweep_step=0.5, pairs_per_image=2, filter=filt,
                       size_sweep=(16, 40, 12))
    for _ in range(3):
        h, w = (int(v) for v in rng.integers(30, 120, 2))
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        image = SourceImage(f"random-{h}x{w}", hashlib.sha256(pixels.tobytes()).hexdigest(), pixels)
        for protocol in PROTOCOLS:
            try:
                units = plan(protocol, image.size, image.digest, cfg)
            except TooSmall:
                continue
            frames += [(image, p) for u in units for p in u.frames]
    return frames


def test_the_cpu_renderers_equal_normalising_each_frames_canvas():
    """The CPU renderers' shortcuts (one resample and, in the reference, one normalisation of a block for
    every frame that shows it, placed into each slot with black around it) give what the definition
    gives: every frame's whole canvas, normalised on its own. Bit for bit, in both layouts, dtypes and
    channel orders; the compiled renderer's inpainted frames (summed in the kernels' order) within
    tolerance."""
    rng = np.random.default_rng(1)
    compiled = CpuRenderer()
    assert compiled.host is not None, compiled.name  # this machine has a compiler
    for filt in ("auto", "area", "bilinear", "nearest"):
        frames = protocol_frames(rng, filt, (int(rng.integers(40, 72)), int(rng.integers(40, 72))))
        fill = np.array([p.fill == "inpaint" for _, p in frames])
        canvases = [canvas for image, p in frames for canvas in render_frames(image.pixels, [p])]
        for pre in PREPROCESSING:
            for layout in ("NCHW", "NHWC"):
                for dtype in (np.dtype(np.float32), np.dtype(np.float16)):
                    want = normalise(canvases, pre.normalisation(), layout, dtype)
                    numpy = reference_batch(frames, pre.normalisation(), layout, dtype).to_host()
                    assert numpy.tobytes() == want.tobytes(), f"filter {filt}, {layout} {dtype.name}"
                    got = compiled.render(frames, pre.normalisation(), layout, dtype).to_host()
                    assert got[~fill].tobytes() == want[~fill].tobytes(), f"filter {filt}, {layout} {dtype.name}"
                    levels = np.abs(got[fill].astype(np.float64) - want[fill]) / np.abs(pre.normalisation().scale).min()
                    assert levels.max() <= INPAINT_TOLERANCE + (0.5 if dtype == np.float16 else 0)


def renders_like_the_cpu(gpu: GpuRenderer) -> int:
    """Every protocol's frames: the kernels on ``gpu`` give the CPU renderer's bits, inpainted frames included."""
    rng = np.random.default_rng(0)
    count = 0
    cpu = CpuRenderer()
    for filt in ("auto", "area", "bilinear", "nearest"):
        frames = protocol_frames(rng, filt, (int(rng.integers(40, 72)), int(rng.integers(40, 72))))
        for pre in PREPROCESSING:
            norm = pre.normalisation()
            for layout in ("NCHW", "NHWC"):
                for dtype in (np.dtype(np.float32), np.dtype(np.float16)):
                    want = cpu.render(frames, norm, layout, dtype).to_host()
                    got = gpu.render(frames, norm, layout, dtype).to_host()
                    assert got.tobytes() == want.tobytes(), f"filter {filt}, {layout} {dtype.name}"
        count += len(frames)
    return count


def test_the_kernels_host_build_renders_every_protocol_as_the_cpu_renderer():
    gpu = GpuRenderer(HostMemory())
    gpu.kernels.poison = True  # a pixel the kernels miss shows as NaN
    assert renders_like_the_cpu(gpu) > 400


@pytest.mark.gpu
def test_the_kernels_on_the_gpu_render_every_protocol_as_the_cpu_renderer():
    from shiftaudit.server.engine.render import gpu_renderer

    gpu, _ = gpu_renderer()
    assert renders_like_the_cpu(gpu) > 400


@pytest.mark.gpu
def test_audit_on_cuda_equals_the_audit_on_cpu():
    options = AuditOptions(pairs_per_image=2, sweep_pixels=3,
                           protocols=("crop", "embed-black", "embed-inpaint", "scale", "null", "translate-sweep"))
    gpu = audit(EXAMPLE_MODEL, EXAMPLE_IMAGES, options, engine_options=EngineOptions(device="cuda"))
    cpu = audit(EXAMPLE_MODEL, EXAMPLE_IMAGES, options, engine_options=CPU)
    assert gpu["device"]["render"].startswith("cuda:0") and cpu["device"]["render"] == "cpu (compiled kernels)"
    assert gpu["protocols"] == cpu["protocols"]  # the same frames, bit for bit: embed-inpaint's too
    print(json.dumps({"gpu": gpu["device"]}))
