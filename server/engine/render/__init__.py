"""Rendering: frames (a source image and a placement each) -> the engine's input batch.

Two renderers with one contract (`Renderer`): the CPU renderer (`cpu.py`, NumPy/OpenCV) and our CUDA
kernels (`gpu.py`). A renderer returns a `Batch` that says where it lies (host memory or a GPU's); the
runner alone decides whether to read it there or take a host copy (`runners.base.Runner.infer`).
"""
from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from shiftaudit.kernels.tables import Normalisation

from ..errors import DeviceError, OptionError, named

if TYPE_CHECKING:  # this module stays light: runners import the batch contract from here, options its DEVICES
    import numpy as np

    from ..geometry import Placement
    from ..images import SourceImage
    from .gpu import GpuRenderer

Frame = tuple["SourceImage", "Placement"]
DEVICES = ("auto", "cuda", "cpu")


class Batch(Protocol):
    """A rendered batch of model input and where it lies: ``device`` is ``cpu`` (host memory) or ``cuda``;
    ``address`` is its first element there, for an engine that binds it in place."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def device(self) -> str: ...

    @property
    def address(self) -> int: ...

    def to_host(self) -> np.ndarray: ...


@dataclass(frozen=True)
class HostBatch:
    """A batch in host memory (the CPU renderer's, or an array a caller hands a runner); contiguous, so
    an engine may bind its address."""

    array: np.ndarray
    device = "cpu"

    def __post_init__(self) -> None:
        import numpy as np  # not at the top: see TYPE_CHECKING above

        object.__setattr__(self, "array", np.ascontiguousarray(self.array))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def address(self) -> int:
        return self.array.ctypes.data

    def to_host(self) -> np.ndarray:
        return self.array


class Renderer(Protocol):
    name: str  # what renders, for the report: "cpu", or "cuda:0 <GPU> (sm_XX)"
    device: str  # where its batches lie

    def render(self, frames: Sequence[Frame], norm: Normalisation, layout: str, dtype: np.dtype) -> Batch: ...


@lru_cache(maxsize=1)
def gpu_renderer() -> tuple[GpuRenderer | None, str]:
    """The kernel renderer on GPU 0 and its name, or None and why not. Made once per process: its
    compiled kernels and uploaded sources are reused, and a missing GPU is not probed again. Without the
    NVIDIA driver's library no GPU can be used: found out at once, not by loading cuda-python (0.1 s)."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        return None, f"no NVIDIA driver ({e})"
    try:
        from .gpu import GpuRenderer

        renderer = GpuRenderer()
        return renderer, renderer.name
    except Exception as e:  # no cuda-python, no driver, no device: all the same to the caller
        return None, f"{type(e).__name__}: {e}"


def select_renderer(device: str) -> Renderer:
    """The renderer for ``device``: ``cuda`` renders with our kernels on the GPU (an error if it cannot),
    ``cpu`` with NumPy/OpenCV, ``auto`` takes cuda when it works."""
    from .cpu import CpuRenderer

    if device not in DEVICES:
        raise OptionError(f"{named('device')} must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return CpuRenderer()
    gpu, why = gpu_renderer()
    if gpu is None:
        if device == "cuda":
            raise DeviceError(f"{named('device')} cuda: no usable GPU ({why}); install the gpu extra (pip install "
                              f"'shiftaudit[gpu]') on a machine with an NVIDIA driver, or use {named('device')} cpu")
        return CpuRenderer()
    return gpu
