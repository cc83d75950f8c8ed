"""Where the CPU audit's render thread spends its time, per protocol: the CPU time of each rendering
stage per frame, measured inside a real audit (ONNX Runtime inferring on both cores at the same time),
and the audit's throughput against the bare engine's on the same frames.

Why: on a machine whose cores ONNX Runtime already keeps busy, the render thread's CPU time comes out of
inference's, so audit / bare ≈ inference / (inference + rendering), and a goal of 0.9 needs rendering
below about a ninth of inference. This says which stage to make cheaper. Stages are timed with
``time.thread_time`` (CPU time of the thread that runs them), wrapping the functions the CPU renderer
(the kernels' host build) calls: decoding, the placements' tables, the kernels' launches (resample,
inpaint_ring, place), and the whole of `CpuRenderer.render` (the launches and their Python around them),
so the numbers include what the competition for cores and caches costs them; the best of ``--reps``
audits is kept for the throughput, the stage times are of that audit.

    python bench/render_profile.py [--protocol crop ...] [--pairs-per-image 8] [--reps 3] [--repeat 4]
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from shiftaudit.kernels import ops
from shiftaudit.server.engine import images
from shiftaudit.server.engine.audit import run_audit
from shiftaudit.server.engine.files import list_images
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import load_preprocessing
from shiftaudit.server.engine.protocols import DEFAULT_PROTOCOLS
from shiftaudit.server.engine.render import HostBatch, cpu
from shiftaudit.server.engine.runners.onnxruntime import OnnxRuntimeRunner

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "efficientnet_lite0.onnx"
IMAGES = ROOT / "examples" / "images"
# (module or class, function) of each stage, in the order a frame meets them; "render" holds the three kernels
STAGES = ((images, "decode"), (cpu, "frame_tables"), (ops, "resample"), (ops, "inpaint_ring"), (ops, "place"),
          (cpu.CpuRenderer, "render"))


def timed(spent: Counter, name: str, fn: Callable) -> Callable:
    def wrapper(*args, **kwargs):
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.thread_time() - start
    return wrapper


class Recording(OnnxRuntimeRunner):
    """The ONNX Runtime runner, keeping the batches it is given (to time the bare engine on them)."""

    batches: list | None = None

    def infer(self, batch):
        if self.batches is not None:
            self.batches.append(batch.to_host().copy())
        return super().infer(batch)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocol", action="append", choices=DEFAULT_PROTOCOLS)
    ap.add_argument("--pairs-per-image", type=int, default=8, help="as bench/cpu_overhead.py (default 8)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=4, help="copies of the image list (default 4: 384 frames)")
    args = ap.parse_args(argv)

    spent: Counter = Counter()
    for module, name in STAGES:  # the renderer looks these up on the module (or class) at each call
        setattr(module, name, timed(spent, name, getattr(module, name)))
    pre = load_preprocessing(MODEL)
    files = list_images(IMAGES) * args.repeat
    sources = [(f"{i}/{p.name}", lambda p=p: images.read(p)) for i, p in enumerate(files)]
    print(f"{'protocol':<14} {'bare ms/f':>9} {'audit ms/f':>10} {'ratio':>6}  render thread CPU ms/frame: "
          + " ".join(name for _, name in STAGES) + " (decode + render)")
    with Recording(MODEL) as runner:
        for protocol in args.protocol or DEFAULT_PROTOCOLS:
            cfg = AuditOptions(protocols=(protocol,), batch=32,
                               pairs_per_image=args.pairs_per_image).resolved(runner.input_spec())
            runner.batches = []
            run_audit(runner, sources, pre, cfg)  # warm-up, and the frames for the bare engine
            batches, runner.batches = [HostBatch(x) for x in runner.batches], None
            frames = sum(b.shape[0] for b in batches)
            best, stages, bare = float("inf"), Counter(), float("inf")
            for _ in range(args.reps):
                start = time.perf_counter()
                for b in batches:
                    runner.infer(b)
                bare = min(bare, time.perf_counter() - start)
                spent.clear()
                start = time.perf_counter()
                run_audit(runner, sources, pre, cfg)
                seconds = time.perf_counter() - start
                if seconds < best:
                    best, stages = seconds, Counter(spent)
            per = {name: 1e3 * stages[name] / frames for _, name in STAGES}
            print(f"{protocol:<14} {1e3 * bare / frames:>9.2f} {1e3 * best / frames:>10.2f} {bare / best:>6.2f}  "
                  + " ".join(f"{v:.3f}" for v in per.values()) + f" ({per['decode'] + per['render']:.3f})", flush=True)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))


if __name__ == "__main__":
    main()
