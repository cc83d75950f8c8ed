"""Engines behind one small interface; ``open_runner`` picks one from the model file. How engines are opened
(`EngineOptions`) and built (`BuildOptions`) are option groups, so this module stays light (no NumPy, no
engine): the runners' classes load when first named (`__getattr__`) or opened."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError, OptionError, named
from ..options import named_options, option
from ..render import DEVICES

if TYPE_CHECKING:
    from .base import EngineOutOfMemory, InputSpec, Runner

ENGINE_SUFFIXES = (".plan", ".engine")  # TensorRT engines
MODEL_SUFFIXES = (".onnx", *ENGINE_SUFFIXES)
_LAZY = {"EngineOutOfMemory": "base", "InputSpec": "base", "Runner": "base"}


def __getattr__(name: str) -> Any:
    """The runners' base classes, imported on first use (PEP 562)."""
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


@named_options
@dataclass(frozen=True)
class BuildOptions:
    """How an engine is built: a dynamic batch gets one optimisation profile 1..``max_batch`` (optimal at the
    max: audits send full batches); ``fp16`` sets the builder flag of TensorRT 10 (TensorRT 11 builds
    strongly typed networks, so there the ONNX model's own types decide: convert it to float16 first)."""

    max_batch: int = option(32, "largest batch of a dynamic-batch model; audits then send batches of this size",
                            parse=int, group="engine")
    fp16: bool = option(False, "let TensorRT 10 pick float16 kernels (TensorRT 11: convert the ONNX model to float16 "
                        "instead)", group="engine")
    workspace_mib: int | None = option(None, "builder workspace limit, MiB", parse=int, group="engine",
                                       default_text="TensorRT's")
    version_compatible: bool = option(False, "an engine later TensorRT releases of the same major version run (it "
                                      "carries host code: load it with --allow-engine-host-code)", group="engine")
    hardware_compatible: bool = option(False, "an engine every GPU of compute capability 8.0 and later runs (Ampere "
                                       "and newer)", group="engine")

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch <= 4096:
            raise OptionError(f"{named('max_batch')} must lie in 1..4096")


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


__all__ = ["BuildOptions", "EngineOptions", "EngineOutOfMemory", "InputSpec", "ModelError", "Runner", "open_runner",
           "ENGINE_SUFFIXES", "MODEL_SUFFIXES"]
