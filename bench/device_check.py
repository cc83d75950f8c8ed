"""The GPU end to end in one prepared run (issue 29), for a fresh GPU machine: at most 8 minutes, every
step bounded, everything it prints in one results file that comes back.

1. ``install``: ONNX Runtime's GPU build, carried as parts of its wheel (each under the 64 MiB a call
   carries; `--wheel-parts`, a glob), joined and installed with pip into a temporary target (no network,
   no dependencies: the machine's CPU build brought them), put first on the path of this process and of
   every step after it; then its version and providers.
2. ``kernels``: ``python -m shiftaudit.kernels --check --device`` (the kernels against their NumPy
   reference, on the device).
3. ``pytest``: ``pytest -m gpu``.
4. ``agreement``: the example model audited twice on identical frames, rendered by our kernels on the
   GPU and inferred by ONNX Runtime's CUDA provider (`--device`), and on the CPU: the share of frames with
   the same top-1 class and the largest |Δp| of the first frame's top class. Goals: at least 0.999, at
   most 1e-3.
5. ``throughput``: the audit's frames per second over the bare engine's on the same frames, rendered once
   on the device beforehand (`--batches`, default 64 and 256). Goal: at least 0.95.
6. ``render``: ``bench/gpu_render.py`` (the render kernel against the device's write bandwidth; goal 0.6).

    python bench/device_check.py --wheel-parts 'wheels/onnxruntime_gpu-*.part*' --out $OUT/device-check.txt

On a CPU (`--steps agreement,throughput --device cpu`) steps 4 and 5 run as they would there:
tests/engine/test_device_check.py runs them so.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "efficientnet_lite0.onnx"
IMAGES = ROOT / "examples" / "images"
STEPS = ("install", "kernels", "pytest", "agreement", "throughput", "render")
LIMITS = {"install": 120, "kernels": 90, "pytest": 150, "render": 60}  # seconds, the subprocess steps'


class Results:
    """The results file: each step's heading, what it printed, its outcome; flushed as it goes, so what was
    done comes back even if the machine's limit cuts the run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("w")

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.file.write(text + "\n")
        self.file.flush()

    def step(self, name: str, run: Callable[[], str]) -> None:
        self.say(f"== {name}")
        start = time.perf_counter()
        try:
            self.say(run())
            outcome = "done"
        except Exception as e:  # a step that fails is recorded, and the next one runs
            self.say(traceback.format_exc(limit=3))
            outcome = f"FAILED ({type(e).__name__}: {e})"
        self.say(f"-- {name}: {outcome} in {time.perf_counter() - start:.1f} s")


def join_parts(pattern: str, folder: Path) -> Path:
    """The wheel whose parts ``pattern`` matches (``NAME.whl.partNN``), put together in ``folder``."""
    parts = sorted(glob.glob(pattern), key=lambda p: int(re.search(r"(\d+)$", p)[1]))
    if not parts:
        raise FileNotFoundError(f"no wheel parts match {pattern}")
    wheel = folder / re.sub(r"\.part\d+$", "", Path(parts[0]).name)
    with wheel.open("wb") as out:
        for part in parts:
            out.write(Path(part).read_bytes())
    return wheel


def install(pattern: str, target: Path) -> str:
    wheel = join_parts(pattern, target.parent)
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target",
                          str(target), str(wheel)], capture_output=True, text=True, timeout=LIMITS["install"])
    if run.returncode:
        raise RuntimeError(f"pip: {run.stderr[-2000:]}")
    sys.path.insert(0, str(target))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(target), os.environ.get("PYTHONPATH"))))
    probe = subprocess.run([sys.executable, "-c", "import onnxruntime as o; print(o.__version__, o.__file__, "
                            "o.get_available_providers())"], capture_output=True, text=True, timeout=60)
    return f"{wheel.name} ({wheel.stat().st_size} bytes) installed: {probe.stdout.strip() or probe.stderr[-1000:]}"


def command(args: list[str], limit: int) -> str:
    run = subprocess.run(args, capture_output=True, text=True, timeout=limit, cwd=ROOT)
    out = (run.stdout + run.stderr)[-6000:]
    if run.returncode:
        raise RuntimeError(f"exit {run.returncode}:\n{out}")
    return out


def agreement(a: dict, b: dict) -> tuple[float, float, int]:
    """Two reports of the same audit compared frame by frame: the share of frames whose top-1 class is the
    same, the largest |Δp| of the first frame's top class, and the frames compared."""
    units_b = {(r["sha256"], u["protocol"], u["index"]): u for r in b["images"] for u in r["units"]}
    same = frames = 0
    largest = 0.0
    for r in a["images"]:
        for u in r["units"]:
            v = units_b[(r["sha256"], u["protocol"], u["index"])]
            same += sum(x == y for x, y in zip(u["top1"], v["top1"]))
            frames += len(u["top1"])
            largest = max([largest, *(abs(x - y) for x, y in zip(u["p_top1"], v["p_top1"]))])
    return same / frames, largest, frames


def audit_agreement(device: str, pairs: int) -> str:
    from shiftaudit.client.api import audit
    from shiftaudit.server.engine.options import AuditOptions
    from shiftaudit.server.engine.runners import EngineOptions

    options = AuditOptions(pairs_per_image=pairs)
    gpu = audit(MODEL, IMAGES, options, engine_options=EngineOptions(device=device))
    cpu = audit(MODEL, IMAGES, options, engine_options=EngineOptions(device="cpu"))
    share, largest, frames = agreement(cpu, gpu)
    goals = f"goals: top-1 >= 0.999 {'met' if share >= 0.999 else 'NOT met'}, |Δp| <= 1e-3 " \
            f"{'met' if largest <= 1e-3 else 'NOT met'}"
    return (f"{gpu['device']} against {cpu['device']}: top-1 agreement {share:.5f} of {frames} frames, "
            f"max |Δp| {largest:.2e}; {goals}")


def throughput(batch: int, device: str, pairs: int) -> str:
    """The audit against the bare engine on its frames: both on ``device`` (render and inference)."""
    from shiftaudit.server.engine.audit import run_audit
    from shiftaudit.server.engine.images import image_sources
    from shiftaudit.server.engine.options import AuditOptions
    from shiftaudit.server.engine.preprocessing import load_preprocessing
    from shiftaudit.server.engine.protocols import plan
    from shiftaudit.server.engine.render import select_renderer
    from shiftaudit.server.engine.runners import EngineOptions, open_runner

    pre = load_preprocessing(MODEL)
    with open_runner(MODEL, EngineOptions(device=device)) as runner:
        spec = runner.input_spec()
        options = AuditOptions(pairs_per_image=pairs, batch=batch).resolved(spec)
        renderer = select_renderer(device)
        sources = image_sources(IMAGES)
        frames = [(image, p) for image in (load() for _, load in sources) for protocol in options.protocols
                  for unit in plan(protocol, image.size, image.digest, options) for p in unit.frames]
        batches = [renderer.render(frames[i:i + batch], pre.normalisation(), spec.layout, spec.dtype)
                   for i in range(0, len(frames), batch)]
        runner.infer(batches[0])  # warm: allocation, kernel selection
        start = time.perf_counter()
        for b in batches:
            runner.infer(b)
        bare = len(frames) / (time.perf_counter() - start)
        start = time.perf_counter()
        result = run_audit(runner, sources, pre, options, renderer=renderer)
        audited = result.frames / (time.perf_counter() - start)
    return (f"batch {batch} on {device} ({renderer.name}, {runner.name}): audit {audited:.1f} frames/s, bare engine "
            f"{bare:.1f} frames/s on the same {len(frames)} frames: ratio {audited / bare:.3f} (goal >= 0.95)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel-parts", help="glob of the onnxruntime-gpu wheel's parts (install step)")
    ap.add_argument("--out", type=Path, required=True, help="the results file")
    ap.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {', '.join(STEPS)}")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="where the audit under test renders "
                    "and infers (the agreement's other audit runs on the CPU)")
    ap.add_argument("--batches", default="64,256", help="batch sizes of the throughput step")
    ap.add_argument("--pairs", type=int, default=4, help="pairs per image and protocol")
    a = ap.parse_args(argv)
    steps = a.steps.split(",")
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        ap.error(f"unknown step {unknown[0]}; choose from {', '.join(STEPS)}")
    results = Results(a.out)
    results.say(f"device_check {time.strftime('%Y-%m-%d %H:%M:%S')}, python {sys.version.split()[0]}, steps {a.steps}")
    with tempfile.TemporaryDirectory(prefix="device-check-") as tmp:
        plan = {"install": lambda: install(a.wheel_parts, Path(tmp) / "site"),
                "kernels": lambda: command([sys.executable, "-m", "shiftaudit.kernels", "--check", "--device"],
                                           LIMITS["kernels"]),
                "pytest": lambda: command([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                                           "tests"], LIMITS["pytest"]),
                "agreement": lambda: audit_agreement(a.device, a.pairs),
                "throughput": lambda: "\n".join(throughput(int(b), a.device, a.pairs) for b in a.batches.split(",")),
                "render": lambda: command([sys.executable, "bench/gpu_render.py"], LIMITS["render"])}
        for name in STEPS:
            if name in steps:
                results.step(name, plan[name])


if __name__ == "__main__":
    main()
