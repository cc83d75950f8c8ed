"""Engines behind one small interface; ``open_runner`` picks one from the model file."""
from __future__ import annotations

from pathlib import Path

from .base import InputSpec, ModelError, Runner


def open_runner(path: Path, device: str = "auto") -> Runner:
    """A runner for the model at ``path`` (``.onnx``: ONNX Runtime). Unless ``device`` is cpu, ONNX
    Runtime's CUDA provider is used when this ONNX Runtime has it (onnxruntime-gpu)."""
    if not path.is_file():
        raise FileNotFoundError(f"model {path} does not exist")
    if path.suffix.lower() == ".onnx":
        import onnxruntime as ort

        from .onnxruntime import OnnxRuntimeRunner

        cuda = device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers()
        return OnnxRuntimeRunner(path, ("CUDAExecutionProvider", "CPUExecutionProvider") if cuda
                                 else ("CPUExecutionProvider",))
    raise ModelError(f"{path}: unknown model type {path.suffix!r}; shiftaudit reads .onnx models")


__all__ = ["InputSpec", "ModelError", "Runner", "open_runner"]
