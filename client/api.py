"""The Python API: one call audits a model on a directory of images, in process, on the CPU."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shiftaudit.server.audit import AuditConfig, Progress, run_audit
from shiftaudit.server.images import list_images, read
from shiftaudit.server.labels import load_labels
from shiftaudit.server.preprocessing import class_names, load_preprocessing
from shiftaudit.server.protocols import PlanConfig
from shiftaudit.server.report import build_report, file_sha256
from shiftaudit.server.runners import open_runner

DEFAULT_CANVAS = (224, 224)


def audit(engine: str | Path, images: str | Path, *, plan: dict | None = None, protocols: tuple[str, ...] | None = None,
          batch: int = 32, strict: bool = False, labels: str | Path | None = None,
          preprocessing: dict | None = None, progress: Callable[[Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> dict:
    """Audit the model file ``engine`` on every image below the directory ``images``; returns the
    ``shiftaudit.report/v1`` report. ``plan`` holds PlanConfig fields (size, shift, seed, ...; the
    canvas defaults to the model's input size), ``preprocessing`` overrides the sidecar's values."""
    engine, images = Path(engine), Path(images)
    files = list_images(images)
    pre = load_preprocessing(engine, **(preprocessing or {}))
    names = class_names(engine, pre)
    truth = load_labels(Path(labels), names) if labels else None
    with open_runner(engine) as runner:
        spec = runner.input_spec()
        plan = dict(plan or {})
        model_hw = (spec.height, spec.width)
        if None not in model_hw:
            if plan.get("canvas") not in (None, model_hw):
                raise ValueError(f"canvas {plan['canvas']} differs from the model's fixed input {model_hw}")
            plan["canvas"] = model_hw
        plan.setdefault("canvas", DEFAULT_CANVAS)
        config = AuditConfig(plan=PlanConfig(**plan), batch=batch, strict=strict,
                             **({"protocols": tuple(protocols)} if protocols else {}))
        sources = [(str(p.relative_to(images)), lambda p=p: read(p, str(p.relative_to(images)))) for p in files]
        result = run_audit(runner, sources, pre, config, labels=truth, progress=progress, should_stop=should_stop)
        model = {"path": str(engine), "sha256": file_sha256(engine), **runner.describe(),
                 "preprocessing": pre.to_json(), "classes": len(names) if names else None}
    report = build_report(model, config, result)
    if names:
        for record in report["images"]:
            for unit in record["units"]:
                unit["top1_names"] = [names[c] if c < len(names) else str(c) for c in unit["top1"]]
    return report
