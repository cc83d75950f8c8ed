"""CPU overhead of the audit engine over bare ONNX Runtime inference.

For each protocol this measures, on the example model and photographs, in one run:

- **bare**: frames/s of a plain ONNX Runtime session with its default options (``session.run`` on the
  protocol's frames, rendered and normalised once beforehand and cut into batches of ``--batch``): the
  engine as a user runs it;
- **ours/bare**: the same frames through ``OnnxRuntimeRunner.infer``, the audit's runner and session,
  against that: what our runner and its session options cost or give the engine alone;
- **audit**: frames/s of ``run_audit`` with our runner, batch size and images, one protocol at a
  time (decoding, planning, rendering in the producer thread, inference, scoring: the real path), with
  the CPU renderer (the kernels' host build); **numpy**: audit / bare of the same audit rendered by the
  NumPy reference (the fallback, and the CPU renderer before issue 30), timed in the same rounds;
- **ratio** = audit / bare: 1.0 means the render thread is fully hidden behind inference; **goal** is
  issue 30's for a 2-core machine, marked ``!`` where this run fell short;
- **peer**: frames/s of the script a user would write instead (`peer_naive.py`: OpenCV resize, a black
  canvas, ONNX Runtime with its default options, same frames and batch), and **audit/peer**, for the
  protocols it can do.

Why: the audit promises to render batch k+1 while the engine runs batch k, so on a CPU-only machine
its throughput should stay close to the engine's own. A low ratio says where to look (rendering cost,
GIL, or the render thread and ONNX Runtime's threads competing for the same cores).

Each image's placements depend on its content hash, so ``--repeat`` copies of the list render the same
frames again; that is fine for timing. Bare, ours, audit and peer runs alternate after one untimed
warm-up of the first three (the peer runs on the bare engine's session, warm by then), and the best of
``--reps`` is kept for every number.

    /work/venv/bin/python bench/cpu_overhead.py [--batch 32] [--pairs-per-image 8] [--repeat 4]
        [--reps 3] [--protocol crop ...] [--threads N]
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from shiftaudit.kernels.reference import normalise
from shiftaudit.kernels.tables import Normalisation
from shiftaudit.server.engine.audit import run_audit
from shiftaudit.server.engine.files import list_images
from shiftaudit.server.engine.images import SourceImage, read
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import Preprocessing, load_preprocessing
from shiftaudit.server.engine.protocols import DEFAULT_PROTOCOLS as PAPER
from shiftaudit.server.engine.protocols import plan
from shiftaudit.server.engine.render.cpu import reference_batch, render_frames
from shiftaudit.server.engine.runners.onnxruntime import OnnxRuntimeRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_naive  # noqa: E402  (bench/ is not a package)

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "efficientnet_lite0.onnx"
IMAGES = ROOT / "examples" / "images"
DEFAULT_PROTOCOLS = ("crop", "embed-black", "scale", "embed-inpaint", "null")  # the paper's, cheapest first
GOALS = {"crop": 0.90, "embed-black": 0.90, "scale": 0.90, "null": 0.90, "embed-inpaint": 0.85,
         "all of them": 0.88}  # audit / bare engine, on a 2-core machine (issue 30)


def prerender(images: list[SourceImage], protocol: str, cfg: AuditOptions, runner: OnnxRuntimeRunner,
              norm: Normalisation) -> list[np.ndarray]:
    """The protocol's frames, in the audit's order, as model-input batches of ``cfg.batch``."""
    spec = runner.input_spec()
    canvases = [c for im in images for unit in plan(protocol, im.size, im.digest, cfg)
                for c in render_frames(im.pixels, unit.frames)]
    return [normalise(np.stack(canvases[i:i + cfg.batch]), norm, spec.layout, spec.dtype)
            for i in range(0, len(canvases), cfg.batch)]


def time_bare(infer: Callable[[np.ndarray], object], batches: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for x in batches:
        infer(x)
    return time.perf_counter() - start


class NumpyRenderer:
    """The NumPy reference as a renderer (what the CPU renderer falls back to)."""

    name = device = "cpu"

    def render(self, frames, norm, layout, dtype):  # noqa: ANN001, ANN201 (the Renderer protocol's)
        return reference_batch(frames, norm, layout, dtype)


def time_audit(runner: OnnxRuntimeRunner, sources: list[tuple[str, Callable[[], SourceImage]]],
               pre: Preprocessing, cfg: AuditOptions, frames: int, renderer: NumpyRenderer | None = None) -> float:
    start = time.perf_counter()
    result = run_audit(runner, sources, pre, cfg, renderer=renderer)
    seconds = time.perf_counter() - start
    assert result.frames == frames, f"audit rendered {result.frames} frames, bare ran {frames}"
    return seconds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--pairs-per-image", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=4,
                    help="copies of the image list (default 4: 384 frames, 12 batches, so filling the "
                         "render pipeline is a small part of the audit's time)")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions; the best is kept (default 3)")
    ap.add_argument("--protocol", action="append", choices=PAPER,
                    help=f"repeatable (default: {' '.join(DEFAULT_PROTOCOLS)})")
    ap.add_argument("--threads", type=int, default=None, help="ORT intra-op threads (default: ORT's)")
    args = ap.parse_args(argv)

    pre = load_preprocessing(MODEL)
    norm = pre.normalisation()
    files = list_images(IMAGES) * args.repeat
    # The audit decodes each file when its turn comes (as the API does); the bare path decodes once.
    sources = [(f"{i}/{p.name}", lambda p=p: read(p)) for i, p in enumerate(files)]
    images = [read(p) for p in files]
    protocols = tuple(args.protocol or DEFAULT_PROTOCOLS)

    print(f"{'protocol':<14} {'frames':>6} {'bare f/s':>9} {'ours/bare':>9} {'audit f/s':>9} {'ratio':>6} "
          f"{'goal':>5} {'numpy':>6} {'peer f/s':>9} {'audit/peer':>10}")
    plain = ort.SessionOptions()  # ONNX Runtime's defaults: the bare engine and the peer run on these
    if args.threads:
        plain.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(MODEL), plain, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def bare_infer(x: np.ndarray) -> object:
        return session.run(None, {name: x})

    def measure(runner: OnnxRuntimeRunner, label: str, cfg: AuditOptions, batches: list[np.ndarray],
                peer_protocol: str | None) -> None:
        frames = sum(len(x) for x in batches)
        time_bare(bare_infer, batches)  # warm-up: ORT allocates per input shape on first use
        time_bare(runner.infer, batches)
        time_audit(runner, sources, pre, cfg, frames)
        bare, ours, audit, numpy, peer = [], [], [], [], []
        for _ in range(args.reps):  # alternate, so drift on a shared machine hits all alike
            bare.append(time_bare(bare_infer, batches))
            ours.append(time_bare(runner.infer, batches))
            audit.append(time_audit(runner, sources, pre, cfg, frames))
            numpy.append(time_audit(runner, sources, pre, cfg, frames, NumpyRenderer()))
            if peer_protocol:
                done, seconds, _ = peer_naive.run(session, images, peer_protocol, cfg, pre)
                assert done == frames, f"the peer inferred {done} frames, the audit {frames}"
                peer.append(seconds)
        b, a = frames / min(bare), frames / min(audit)
        versus = f"{frames / min(peer):>9.1f} {a / (frames / min(peer)):>10.2f}" if peer else f"{'-':>9} {'-':>10}"
        goal = f"{GOALS[label]:.2f}{' ' if a / b >= GOALS[label] else '!'}" if label in GOALS else "-"
        print(f"{label:<14} {frames:>6} {b:>9.1f} {min(bare) / min(ours):>9.2f} {a:>9.1f} {a / b:>6.2f} {goal:>5} "
              f"{min(bare) / min(numpy):>6.2f} {versus}", flush=True)

    with OnnxRuntimeRunner(MODEL, threads=args.threads) as runner:
        for protocol in protocols:
            cfg = AuditOptions(protocols=(protocol,), batch=args.batch,
                               pairs_per_image=args.pairs_per_image).resolved(runner.input_spec())
            measure(runner, protocol, cfg, prerender(images, protocol, cfg, runner, norm),
                    protocol if protocol in peer_naive.PROTOCOLS else None)
        if len(protocols) > 1:  # the audit people run: every protocol at once, against the engine on its frames
            cfg = AuditOptions(protocols=protocols, batch=args.batch,
                               pairs_per_image=args.pairs_per_image).resolved(runner.input_spec())
            measure(runner, "all of them", cfg, [b for protocol in protocols for b in prerender(
                images, protocol, replace(cfg, protocols=(protocol,)), runner, norm)], None)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]),
          f"(batch {args.batch}, pairs/image {args.pairs_per_image}, repeat {args.repeat}, reps {args.reps}, "
          f"threads {args.threads or 'ORT default'})")


if __name__ == "__main__":
    main()
