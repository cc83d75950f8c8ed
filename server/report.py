"""The versioned JSON report (``shiftaudit.report/v1``) that the CLI writes and other tools read."""
from __future__ import annotations

import hashlib
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .audit import AuditConfig, AuditResult

SCHEMA = "shiftaudit.report/v1"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def build_report(model: dict, config: AuditConfig, result: AuditResult, device: dict) -> dict:
    """``model``: what the runner and preprocessing say about the model (path, digest, input, ...)."""
    return {
        "schema": SCHEMA,
        "tool": {"name": "shiftaudit", "version": package_version("shiftaudit"),
                 "onnxruntime": package_version("onnxruntime"), "python": platform.python_version()},
        "model": {**model, "output_kind": result.output_kind},
        "config": config.to_json(),
        "device": device,
        "frames": result.frames,
        "seconds": round(result.seconds, 3),
        "protocols": {name: stats.summary() for name, stats in result.stats.items()},
        "skipped": result.skipped,
        "images": result.images,
    }
