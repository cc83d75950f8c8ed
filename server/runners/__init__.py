"""Engines behind one small interface; ``open_runner`` picks one from the model file."""
from __future__ import annotations

from pathlib import Path

from .base import InputSpec, ModelError, Runner


def open_runner(path: Path) -> Runner:
    """A runner for the model at ``path`` (``.onnx``: ONNX Runtime)."""
    if not path.is_file():
        raise FileNotFoundError(f"model {path} does not exist")
    if path.suffix.lower() == ".onnx":
        from .onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path)
    raise ModelError(f"{path}: unknown model type {path.suffix!r}; shiftaudit reads .onnx models")


__all__ = ["InputSpec", "ModelError", "Runner", "open_runner"]
