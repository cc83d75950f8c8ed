"""One audit job, as the CLI and the service both run it: options -> config -> audit -> report."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .audit import AuditConfig, ImageSource, Progress, run_audit
from .images import list_images, read
from .preprocessing import Preprocessing, class_names
from .protocols import PlanConfig
from .report import build_report, file_sha256
from .runners import Runner

DEFAULT_CANVAS = (224, 224)


def make_config(runner: Runner, plan: dict | None, protocols: tuple[str, ...] | None, batch: int | None,
                strict: bool) -> AuditConfig:
    """The audit configuration; the canvas is the model's input size unless the model's is dynamic."""
    plan = dict(plan or {})
    spec = runner.input_spec()
    model_hw = (spec.height, spec.width)
    if None not in model_hw:
        if plan.get("canvas") not in (None, model_hw):
            raise ValueError(f"canvas {plan['canvas']} differs from the model's fixed input {model_hw}")
        plan["canvas"] = model_hw
    plan.setdefault("canvas", DEFAULT_CANVAS)
    extra = {"protocols": tuple(dict.fromkeys(protocols))} if protocols else {}
    return AuditConfig(plan=PlanConfig(**plan), batch=batch or AuditConfig.batch, strict=strict, **extra)


def directory_sources(directory: Path) -> list[ImageSource]:
    """Every file below ``directory`` (or the file itself), named by its path relative to it."""
    if directory.is_file():
        return [(directory.name, lambda: read(directory, directory.name))]
    return [(str(p.relative_to(directory)), lambda p=p: read(p, str(p.relative_to(directory))))
            for p in list_images(directory)]


def run_job(runner: Runner, model_path: Path, pre: Preprocessing, config: AuditConfig,
            sources: list[ImageSource], labels: dict[str, int] | None = None,
            progress: Callable[[Progress], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> dict:
    """Run the audit and build its report (class names added to the records when known)."""
    result = run_audit(runner, sources, pre, config, labels=labels, progress=progress, should_stop=should_stop)
    names = class_names(model_path, pre)
    model = {"path": model_path.name, "sha256": file_sha256(model_path), **runner.describe(),
             "preprocessing": pre.to_json(), "classes": len(names) if names else None}
    report = build_report(model, config, result)
    if names:
        for record in report["images"]:
            for unit in record["units"]:
                unit["top1_names"] = [names[c] if c < len(names) else str(c) for c in unit["top1"]]
    return report
