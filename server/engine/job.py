"""One audit job, as the CLI and the service both run it: options -> config -> audit -> report."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .audit import MAX_BATCH, AuditConfig, ImageSource, Progress, run_audit
from .images import ImageError, SourceImage, list_images, read
from .preprocessing import Preprocessing, class_names
from .protocols import PlanConfig
from .render.cpu import BatchRenderer, render_batch
from .report import build_report, file_sha256
from .runners import Runner

if TYPE_CHECKING:
    from shiftaudit.kernels.renderer import KernelRenderer



def make_config(runner: Runner, plan: dict | None, protocols: tuple[str, ...] | None, batch: int | None,
                strict: bool) -> AuditConfig:
    """The audit configuration; the canvas is the model's input size unless the model's is dynamic, and
    the batch, unless given, is the engine's largest (a TensorRT profile's max) or 32."""
    plan = dict(plan or {})
    spec = runner.input_spec()
    if batch is None and spec.max_batch:
        batch = min(spec.max_batch, MAX_BATCH)
    model_hw = (spec.height, spec.width)
    if None not in model_hw:
        if plan.get("canvas") not in (None, model_hw):
            raise ValueError(f"canvas {plan['canvas']} differs from the model's fixed input {model_hw}")
        plan["canvas"] = model_hw
    plan.setdefault("canvas", PlanConfig.canvas)
    extra = {"protocols": tuple(dict.fromkeys(protocols))} if protocols else {}
    return AuditConfig(plan=PlanConfig(**plan), batch=batch or AuditConfig.batch, strict=strict, **extra)


def directory_sources(directory: Path, confine: Path | None = None) -> list[ImageSource]:
    """Every file below ``directory`` (or the file itself), named by its path relative to it. With
    ``confine``, a file whose real path (symlinks resolved) lies outside that root is not read: it is
    skipped with the reason, like an unreadable image."""
    files = [directory] if directory.is_file() else list_images(directory)
    root = confine.resolve() if confine else None

    def load(path: Path, name: str) -> SourceImage:
        if root is not None and root not in path.resolve().parents:
            raise ImageError(f"{name}: leads outside the data root")
        return read(path, name)

    return [(name, lambda p=p, name=name: load(p, name))
            for p in files for name in [p.name if p == directory else str(p.relative_to(directory))]]


DEVICES = ("auto", "cuda", "cpu")


class DeviceError(RuntimeError):
    """``--device cuda`` was asked for and cannot be had here."""


@dataclass(frozen=True)
class Backend:
    render: BatchRenderer
    device: dict  # what rendered and what inferred, for the report


@lru_cache(maxsize=1)
def gpu_renderer() -> tuple["KernelRenderer | None", str]:
    """The kernel renderer on GPU 0 and its name, or None and why not. Made once per process: its
    compiled kernels and uploaded sources are reused, and a missing GPU is not probed again."""
    try:
        from shiftaudit.kernels.renderer import DeviceMemory, KernelRenderer

        memory = DeviceMemory()
        return KernelRenderer(memory), f"cuda:0 {memory.launch.name} ({memory.launch.arch})"
    except Exception as e:  # no cuda-python, no driver, no device: all the same to the caller
        return None, f"{type(e).__name__}: {e}"


def select_backend(device: str, runner: Runner) -> Backend:
    """The renderer for ``device``: ``cuda`` renders with our kernels on the GPU (an error if it cannot),
    ``cpu`` with NumPy/OpenCV, ``auto`` takes cuda when it works."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    cpu = Backend(render_batch, {"render": "cpu", "inference": f"cpu ({runner.name})"})
    if device == "cpu":
        return cpu
    render, name = gpu_renderer()
    if render is None:
        if device == "cuda":
            raise DeviceError(f"--device cuda: no usable GPU ({name}); install the gpu extra "
                              "(pip install 'shiftaudit[gpu]') on a machine with an NVIDIA driver, or use --device cpu")
        return cpu
    if "cuda" in runner.memory_devices:  # the engine reads the batch where the kernels wrote it
        return Backend(render.render, {"render": name, "inference": f"cuda ({runner.name}, reading the rendered batch in place)"})
    return Backend(render, {"render": name, "inference": f"cpu ({runner.name}; batches copied to the host)"})


def run_job(runner: Runner, model_path: Path, pre: Preprocessing, config: AuditConfig,
            sources: list[ImageSource], labels: dict[str, int] | None = None,
            progress: Callable[[Progress], None] | None = None,
            should_stop: Callable[[], bool] | None = None, device: str = "auto") -> dict:
    """Run the audit and build its report (class names added to the records when known)."""
    backend = select_backend(device, runner)
    result = run_audit(runner, sources, pre, config, labels=labels, progress=progress, should_stop=should_stop,
                       render=backend.render)
    names = class_names(model_path, pre)
    model = {"path": model_path.name, "sha256": file_sha256(model_path), **runner.describe(),
             "preprocessing": pre.to_json(), "classes": len(names) if names else None}
    report = build_report(model, config, result, backend.device)
    if names:
        for record in report["images"]:
            for unit in record["units"]:
                unit["top1_names"] = [names[c] if c < len(names) else str(c) for c in unit["top1"]]
    return report
