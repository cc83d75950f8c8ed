"""One audit job, as the CLI and the service both run it: options -> config -> audit -> report."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .audit import MAX_BATCH, AuditConfig, ImageSource, Progress, run_audit
from .images import ImageError, SourceImage, list_images, read
from .preprocessing import Preprocessing, class_names
from .protocols import PlanConfig
from .render import Renderer, select_renderer
from .report import build_report, file_sha256
from .runners import Runner


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


def inference_site(renderer: Renderer, runner: Runner) -> str:
    """Where the engine reads the batches, for the report."""
    if renderer.device == "cpu":
        return f"cpu ({runner.name})"
    if renderer.device in runner.memory_devices:
        return f"{renderer.device} ({runner.name}, reading the rendered batch in place)"
    return f"cpu ({runner.name}; batches copied to the host)"


def run_job(runner: Runner, model_path: Path, pre: Preprocessing, config: AuditConfig,
            sources: list[ImageSource], labels: dict[str, int] | None = None,
            progress: Callable[[Progress], None] | None = None,
            should_stop: Callable[[], bool] | None = None, device: str = "auto") -> dict:
    """Run the audit and build its report (class names added to the records when known)."""
    renderer = select_renderer(device)
    result = run_audit(runner, sources, pre, config, labels=labels, progress=progress, should_stop=should_stop,
                       renderer=renderer)
    names = class_names(model_path, pre)
    model = {"path": model_path.name, "sha256": file_sha256(model_path), **runner.describe(),
             "preprocessing": pre.to_json(), "classes": len(names) if names else None}
    report = build_report(model, config, result, {"render": renderer.name, "inference": inference_site(renderer, runner)})
    if names:
        for record in report["images"]:
            for unit in record["units"]:
                unit["top1_names"] = [names[c] if c < len(names) else str(c) for c in unit["top1"]]
    return report
