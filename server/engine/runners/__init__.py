"""Engines behind one small interface; ``open_runner`` picks one from the model file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import OptionError, named
from ..options import named_options, option
from ..render import DEVICES
from .base import EngineOutOfMemory, InputSpec, ModelError, Runner
from .tensorrt import ENGINE_SUFFIXES

MODEL_SUFFIXES = (".onnx", *ENGINE_SUFFIXES)


@named_options
@dataclass(frozen=True)
class EngineOptions:
    """How engines are opened and where frames are rendered: ``device`` (auto, cuda, cpu) for our renderer
    and ONNX Runtime's provider, whether TensorRT engines may carry host code (deserialising runs it), and
    whether ONNX models run through ONNX Runtime's TensorRT execution provider; ``threads`` sets ONNX
    Runtime's thread count where the process shares its cores (a Ray actor, whose OMP_NUM_THREADS Ray sets
    to 1). A server decides these for every audit (its own flags); an audit in process, its caller."""

    device: str = option("auto", "where frames are rendered and ONNX models run: cuda (our kernels and ONNX "
                         "Runtime's CUDA provider), cpu, or auto (cuda when usable); a server picks its own",
                         choices=DEVICES, group="model")
    allow_engine_host_code: bool = option(False, "let a TensorRT engine that carries host code load (deserialising "
                                          "runs it: only for engines you trust, e.g. version-compatible ones)",
                                          group="model")
    onnx_tensorrt: bool = option(False, "run ONNX models through ONNX Runtime's TensorRT execution provider "
                                 "(onnxruntime-gpu with TensorRT; an error if it does not load)", group="model")
    threads: int | None = None  # ONNX Runtime's intra-op threads (None: its default, every core)

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise OptionError(f"{named('device')} must be one of {', '.join(DEVICES)}, not {self.device!r}")


def open_runner(path: Path, options: EngineOptions = EngineOptions()) -> Runner:
    """A runner for the model at ``path``: ``.plan``/``.engine`` TensorRT, ``.onnx`` ONNX Runtime (its
    TensorRT provider when asked, else its CUDA provider when this ONNX Runtime has it and the device
    is not cpu)."""
    if not path.is_file():
        raise FileNotFoundError(f"model {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in ENGINE_SUFFIXES:
        if options.device == "cpu":
            raise ModelError(f"{path}: a TensorRT engine runs on a GPU; {named('device')} cpu cannot run it")
        from .tensorrt import TensorRTRunner

        return TensorRTRunner(path, options.allow_engine_host_code)
    if suffix == ".onnx":
        from .onnxruntime import OnnxRuntimeRunner, providers_for

        return OnnxRuntimeRunner(path, providers_for(options.device, options.onnx_tensorrt), options.threads)
    raise ModelError(f"{path}: unknown model type {path.suffix!r}; shiftaudit reads {', '.join(MODEL_SUFFIXES)}")


__all__ = ["EngineOptions", "EngineOutOfMemory", "InputSpec", "ModelError", "Runner", "open_runner", "MODEL_SUFFIXES"]
