"""The runner interface (after Polygraphy's runners): open, describe the input, infer a batch.

A runner hides the engine: ONNX Runtime here, TensorRT later. Heavy or optional engine libraries are
imported inside the runner that needs them, so the package imports cleanly without them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError, named
from ..render import Batch, HostBatch

FLOATS = (np.dtype(np.float32), np.dtype(np.float16))


class EngineOutOfMemory(ModelError):
    """The engine could not allocate what a batch needs: a smaller batch or canvas may fit."""


_OUT_OF_MEMORY = ("failed to allocate memory", "bad_alloc", "out of memory")


def engine_failure(e: Exception, what: str) -> ModelError:
    """An engine's exception as one line that says ``what`` failed; out of memory as EngineOutOfMemory."""
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    if any(marker in text.lower() for marker in _OUT_OF_MEMORY):
        return EngineOutOfMemory(f"{what}: the engine ran out of memory ({first[-300:]}); use a smaller "
                                 f"{named('batch')}")
    return ModelError(f"{what}: {first}")


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


UNKNOWN_ACTIVATIONS = 32


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

    def release_memory(self) -> None:
        """Give back what the engine keeps between calls beyond the model itself (idle models in a server:
        `service.catalog`); the next call may be slower."""

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

    def activation_bytes(self, batch: int, hw: tuple[int, int]) -> int:
        """Host memory one engine call of ``batch`` frames of ``hw`` takes beyond its input and the model's
        weights (a server's memory budget counts it). Without a better estimate: UNKNOWN_ACTIVATIONS times
        the input's bytes, more than the convolutional classifiers measured need (EfficientNet-Lite0: 15)."""
        return UNKNOWN_ACTIVATIONS * batch * 3 * hw[0] * hw[1] * self.input_spec().dtype.itemsize

    memory_devices: tuple[str, ...] = ()  # where a batch may lie for `_run_bound` ("cpu", "cuda")

    def _run_bound(self, batch: Batch) -> np.ndarray:
        """One engine call on a batch left where the renderer put it (see `infer`)."""
        raise NotImplementedError

    def reads_in_place(self, batch: Batch) -> bool:
        """Whether the engine reads ``batch`` where it lies: memory it binds, and a size in its batch range."""
        least, most = self.input_spec().batch_range()
        n = batch.shape[0]
        return batch.device in self.memory_devices and least <= n and (most is None or n <= most)

    def infer(self, batch: Batch | np.ndarray) -> np.ndarray:
        """Outputs for a rendered batch (or a host array). Only the runner decides where it reads the
        batch: in place (`reads_in_place`), else a host copy, split into engine calls of at most the
        engine's batch and padded up to its least."""
        if isinstance(batch, np.ndarray):
            batch = HostBatch(batch)
        least, most = self.input_spec().batch_range()
        n = batch.shape[0]
        if self.reads_in_place(batch):
            return self._checked(self._run_bound(batch), n)
        outs = [self._run(chunk)[:m] for chunk, m in engine_calls(batch.to_host(), least, most)]
        return self._checked(np.concatenate(outs) if len(outs) > 1 else outs[0], n)

    @staticmethod
    def _checked(out: np.ndarray, n: int) -> np.ndarray:
        if out.ndim != 2 or out.shape[0] != n or out.shape[1] < 2:
            raise ModelError(f"model output has shape {list(out.shape)} for a batch of {n}; "
                             "an image classifier outputs (batch, classes)")
        finite = np.isfinite(out).all(axis=1)
        if not finite.all():  # metrics of NaN would be garbage that a gate could pass
            raise ModelError(f"the model output NaN or infinite values for {int((~finite).sum())} of {n} frames; "
                             "check the preprocessing (mean, std, pixel range) it is fed with")
        return out.astype(np.float32, copy=False)


def engine_calls(batch: np.ndarray, least: int, most: int | None) -> Iterator[tuple[np.ndarray, int]]:
    """``batch`` as engine calls of at most ``most`` frames (None: all), each padded up to ``least`` with
    copies of its first frame; with each, how many of its frames are the batch's."""
    step = most or len(batch)
    for i in range(0, len(batch), step):
        chunk = batch[i:i + step]
        m = len(chunk)
        if m < least:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], least - m, axis=0)])
        yield chunk, m


def _dim(d) -> int | None:
    """A dimension as the engines list it: a positive int, or None when dynamic (-1, 0, a name)."""
    return d if isinstance(d, int) and d > 0 else None


def image_input(path: Path, inputs: Sequence[tuple[str, Sequence]]) -> tuple[str, str, int | None, int | None]:
    """(name, layout, height, width) of a model's one input, an image batch [N, 3, H, W] or [N, H, W, 3]
    (height and width None when dynamic); ModelError for any other model. Every runner asks this."""
    if len(inputs) != 1:
        raise ModelError(f"{path}: model has {len(inputs)} inputs; shiftaudit audits single-input image classifiers")
    name, shape = inputs[0]
    if len(shape) != 4 or 3 not in (shape[1], shape[3]):
        raise ModelError(f"{path}: input {name!r} has shape {list(shape)}; expected an image batch "
                         "[N, 3, H, W] or [N, H, W, 3]")
    layout = "NCHW" if shape[1] == 3 else "NHWC"
    h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    return name, layout, _dim(h), _dim(w)


def float_tensor(path: Path, name: str, type_name: str, dtype: np.dtype | None) -> np.dtype:
    """The tensor's dtype if the audit can feed or read it (float32, float16); ModelError otherwise."""
    if dtype is None or np.dtype(dtype) not in FLOATS:
        raise ModelError(f"{path}: tensor {name!r} is {type_name}; the audit needs float32 or float16 inputs and "
                         "outputs (quantised models and engines keep them when exported or built so)")
    return np.dtype(dtype)


def classifier_output(path: Path, name: str, shape: Sequence) -> None:
    """The output is (batch, classes), with at least two classes when the number is fixed."""
    if len(shape) != 2 or (_dim(shape[1]) or 2) < 2:
        raise ModelError(f"{path}: output {name!r} has shape {list(shape)}; an image classifier outputs "
                         "(batch, classes)")
