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

    def to_json(self) -> dict:
        return {"name": self.name, "layout": self.layout, "height": self.height, "width": self.width,
                "dtype": np.dtype(self.dtype).name, "batch": self.batch}


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

    def infer(self, batch: np.ndarray) -> np.ndarray:
        fixed = self.input_spec().batch
        if fixed is None:
            out = self._run(batch)
            outs = [out]
        else:
            outs = []
            for i in range(0, len(batch), fixed):
                chunk = batch[i:i + fixed]
                n = len(chunk)
                if n < fixed:  # pad the last chunk with copies of its first frame
                    chunk = np.concatenate([chunk, np.repeat(chunk[:1], fixed - n, axis=0)])
                outs.append(self._run(chunk)[:n])
        out = np.concatenate(outs) if len(outs) > 1 else outs[0]
        if out.ndim != 2 or out.shape[0] != len(batch) or out.shape[1] < 2:
            raise ModelError(f"model output has shape {list(out.shape)} for a batch of {len(batch)}; "
                             "an image classifier outputs (batch, classes)")
        return out.astype(np.float32, copy=False)
