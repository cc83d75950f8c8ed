"""The runner interface (after Polygraphy's runners): open, describe the input, infer a batch.

A runner hides the engine: ONNX Runtime here, TensorRT later. Heavy or optional engine libraries are
imported inside the runner that needs them, so the package imports cleanly without them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


class ModelError(RuntimeError):
    """The model cannot be audited as it is (not a single-input image classifier, unloadable...)."""


@dataclass(frozen=True)
class InputSpec:
    name: str
    layout: str  # NCHW | NHWC
    height: int | None  # None: dynamic
    width: int | None
    dtype: np.dtype  # float32 | float16
    batch: int | None  # fixed batch size, or None when dynamic
    min_batch: int = 1  # a dynamic batch's range (a TensorRT optimisation profile's)
    max_batch: int | None = None

    def to_json(self) -> dict:
        out = {"name": self.name, "layout": self.layout, "height": self.height, "width": self.width,
               "dtype": np.dtype(self.dtype).name, "batch": self.batch}
        if self.batch is None and (self.min_batch > 1 or self.max_batch):
            out["batch_range"] = [self.min_batch, self.max_batch]
        return out

    def batch_range(self) -> tuple[int, int | None]:
        """The fewest and most frames one engine call takes (None: no limit)."""
        return (self.batch, self.batch) if self.batch else (self.min_batch, self.max_batch)


class Runner(ABC):
    """``with runner: runner.infer(batch)``; ``infer`` takes any number of frames (it splits and pads
    for engines with a fixed batch) and returns the (N, classes) output as float32."""

    name: str

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the engine."""

    @abstractmethod
    def input_spec(self) -> InputSpec: ...

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """One engine call on exactly the engine's batch size (or any size if dynamic)."""

    @abstractmethod
    def io_tensors(self) -> dict[str, list[dict]]:
        """{"inputs": [...], "outputs": [...]}, each {"name", "shape" (-1: dynamic), "dtype"}."""

    def describe(self) -> dict:
        return {"runner": self.name, "input": self.input_spec().to_json()}

    memory_devices: tuple[str, ...] = ()  # where a batch may lie for `_run_bound` ("cpu", "cuda")

    def _run_bound(self, batch) -> np.ndarray:
        """One engine call on a batch left in the renderer's memory (see `infer`)."""
        raise NotImplementedError

    def infer(self, batch) -> np.ndarray:
        """``batch`` is a host array, or a batch the kernels rendered (``shiftaudit.kernels.renderer.
        Rendered``), which the engine reads where it lies when it can, else after a copy to the host.
        Batches are split into engine calls of at most the engine's batch, and padded up to its least."""
        least, most = self.input_spec().batch_range()
        n = batch.shape[0]
        if not isinstance(batch, np.ndarray):
            if batch.device in self.memory_devices and least <= n and (most is None or n <= most):
                return self._checked(self._run_bound(batch), n)
            batch = batch.to_host()
        outs = []
        for i in range(0, n, most or n):
            chunk = batch[i:i + (most or n)]
            m = len(chunk)
            if m < least:  # pad with copies of the chunk's first frame
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], least - m, axis=0)])
            outs.append(self._run(chunk)[:m])
        return self._checked(np.concatenate(outs) if len(outs) > 1 else outs[0], n)

    @staticmethod
    def _checked(out: np.ndarray, n: int) -> np.ndarray:
        if out.ndim != 2 or out.shape[0] != n or out.shape[1] < 2:
            raise ModelError(f"model output has shape {list(out.shape)} for a batch of {n}; "
                             "an image classifier outputs (batch, classes)")
        return out.astype(np.float32, copy=False)
