"""The render thread's priority and ONNX Runtime's spinning, A/B in one run: the audit as it runs (render
thread at nice `pipeline.PRODUCER_NICENESS`, ONNX Runtime's idle threads asleep) against the audit as it
ran before (render thread at the caller's priority, ONNX Runtime spinning, its default), both against
the bare engine (ONNX Runtime's default session on the pre-rendered frames), alternating, best of
``--reps``. Prints audit / bare for both, per protocol and for all five at once.

Why: on this 2-core machine a run-to-run spread of ±0.05 hides a change of that size between two runs of
`cpu_overhead.py`; alternating both setups in one run puts the same drift on each.

    python bench/render_priority.py [--reps 5] [--protocol crop ...]
"""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import onnxruntime as ort

from shiftaudit.server.engine import pipeline
from shiftaudit.server.engine.files import list_images
from shiftaudit.server.engine.images import read
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import load_preprocessing
from shiftaudit.server.engine.protocols import PAIR_PROTOCOLS
from shiftaudit.server.engine.runners.onnxruntime import OnnxRuntimeRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_overhead import DEFAULT_PROTOCOLS, IMAGES, MODEL, prerender, time_audit, time_bare  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--protocol", action="append", choices=PAIR_PROTOCOLS)
    args = ap.parse_args(argv)
    pre = load_preprocessing(MODEL)
    norm = pre.normalisation()
    files = list_images(IMAGES) * 4
    sources = [(f"{i}/{p.name}", lambda p=p: read(p)) for i, p in enumerate(files)]
    images = [read(p) for p in files]
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    nice = pipeline.PRODUCER_NICENESS
    with OnnxRuntimeRunner(MODEL) as now, OnnxRuntimeRunner(MODEL) as before:
        before._options = ort.SessionOptions()  # ONNX Runtime's defaults: its threads spin
        before.release_memory()  # a session made with them

        def audit(runner: OnnxRuntimeRunner, niceness: int, cfg: AuditOptions, frames: int) -> float:
            pipeline.PRODUCER_NICENESS = niceness  # read by each audit's render thread as it starts
            return time_audit(runner, sources, pre, cfg, frames)

        def bare(x):
            return session.run(None, {name: x})

        print(f"{'protocol':<14} {'frames':>6} {'bare f/s':>9} {'now':>5} {'before':>6}")
        protocols = [(p,) for p in args.protocol or DEFAULT_PROTOCOLS] + [DEFAULT_PROTOCOLS]
        for protos in protocols:
            cfg = AuditOptions(protocols=protos, batch=32, pairs_per_image=8).resolved(now.input_spec())
            batches = [b for p in protos for b in prerender(images, p, replace(cfg, protocols=(p,)), now, norm)]
            frames = sum(len(x) for x in batches)
            time_bare(bare, batches)  # warm-up of each
            audit(now, nice, cfg, frames)
            audit(before, 0, cfg, frames)
            times: dict[str, list[float]] = {"bare": [], "now": [], "before": []}
            for _ in range(args.reps):
                times["bare"].append(time_bare(bare, batches))
                times["now"].append(audit(now, nice, cfg, frames))
                times["before"].append(audit(before, 0, cfg, frames))
            b = min(times["bare"])
            label = protos[0] if len(protos) == 1 else "all five"
            print(f"{label:<14} {frames:>6} {frames / b:>9.1f} {b / min(times['now']):>5.2f} "
                  f"{b / min(times['before']):>6.2f}", flush=True)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]), f"(reps {args.reps})")


if __name__ == "__main__":
    main()
