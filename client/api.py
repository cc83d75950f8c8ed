"""The Python API: one call audits a model on a directory of images, in this process."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shiftaudit.server.engine.audit import Progress
from shiftaudit.server.engine.job import directory_sources, make_config, run_job
from shiftaudit.server.engine.labels import load_labels
from shiftaudit.server.engine.preprocessing import class_names, load_preprocessing
from shiftaudit.server.engine.runners import EngineOptions, open_runner


def audit(engine: str | Path, images: str | Path, *, plan: dict | None = None, protocols: tuple[str, ...] | None = None,
          batch: int | None = None, strict: bool = False, labels: str | Path | None = None,
          preprocessing: dict | None = None, progress: Callable[[Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None, device: str = "auto",
          allow_engine_host_code: bool = False, onnx_tensorrt: bool = False) -> dict:
    """Audit the model file ``engine`` on every image below the directory ``images``; returns the
    ``shiftaudit.report/v1`` report. ``plan`` holds PlanConfig fields (size, shift, seed, ...; the
    canvas defaults to the model's input size), ``preprocessing`` overrides the sidecar's values,
    ``device`` (auto, cuda, cpu) says where frames are rendered and ONNX models run;
    ``allow_engine_host_code`` lets TensorRT engines with host code load (deserialising runs it: only
    for engines you trust); ``onnx_tensorrt`` runs ONNX models through ONNX Runtime's TensorRT provider."""
    engine = Path(engine)
    sources = directory_sources(Path(images))
    pre = load_preprocessing(engine, **(preprocessing or {}))
    truth = load_labels(Path(labels), class_names(engine, pre)) if labels else None
    with open_runner(engine, EngineOptions(device, allow_engine_host_code, onnx_tensorrt)) as runner:
        config = make_config(runner, plan, protocols, batch, strict)
        return run_job(runner, engine, pre, config, sources, truth, progress, should_stop, device)
