"""The Python API: one call audits a model on a directory of images, in this process."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shiftaudit.server.engine.compare import compare_reports
from shiftaudit.server.engine.files import Shard, image_files
from shiftaudit.server.engine.images import image_sources
from shiftaudit.server.engine.job import Job, run_together
from shiftaudit.server.engine.layers import profile_layers
from shiftaudit.server.engine.layers.profile import MAX_MEMORY, RISE
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.progress import Progress
from shiftaudit.server.engine.runners import EngineOptions, open_runner
from shiftaudit.server.engine.scale_out import RayOptions, run_on_ray


def audit(engine: str | Path, images: str | Path, options: AuditOptions | Mapping[str, Any] | None = None, *,
          preprocessing: Mapping[str, Any] | None = None, labels: str | Path | None = None,
          progress: Callable[[Progress], None] | None = None, should_stop: Callable[[], bool] | None = None,
          device: str = "auto", allow_engine_host_code: bool = False, onnx_tensorrt: bool = False,
          shard: Shard | None = None) -> dict:
    """Audit the model file ``engine`` on every image below the directory ``images``; returns the
    ``shiftaudit.report/v1`` report. ``options`` (`AuditOptions`, or a mapping of its fields: protocols,
    size, shift, seed, ...; the canvas defaults to the model's input size), ``preprocessing`` overrides the sidecar's values
    (`Preprocessing` fields), ``labels`` is a file of ``image,label`` lines, ``device`` (auto, cuda, cpu)
    says where frames are rendered and ONNX models run; ``allow_engine_host_code`` lets TensorRT engines
    with host code load (deserialising runs it: only for engines you trust); ``onnx_tensorrt`` runs ONNX
    models through ONNX Runtime's TensorRT provider; ``shard`` (`Shard`) audits one shard of the images
    (a job array's part, which `shiftaudit.server.engine.report.merge_parts` merges).

    Raises `InputError` (its subclass `OptionError` for a misspelt or out-of-range option), `ModelError`,
    `DeviceError` or `Cancelled`, all `AuditError`s exported by ``shiftaudit.client``."""
    if isinstance(options, Mapping):
        options = AuditOptions(**options)
    engine = Path(engine)
    options = options or AuditOptions()
    sources = image_sources(Path(images), shard=shard, by_content=options.target_halfwidth is not None)
    listed = [name for name, _ in image_files(Path(images))] if shard else None
    with open_runner(engine, EngineOptions(device, allow_engine_host_code, onnx_tensorrt)) as runner:
        job = Job.prepare(engine, runner, options, sources, preprocessing=preprocessing,
                          labels=Path(labels) if labels else None, device=device, listed=listed)
        report = job.run(progress, should_stop)
    if shard:
        report["shard"] = {**shard.to_json(), "images_listed": len(listed)}
    return report


def compare(engine_a: str | Path, engine_b: str | Path, images: str | Path,
            options: AuditOptions | Mapping[str, Any] | None = None, *,
            preprocessing: Mapping[str, Any] | None = None, labels: str | Path | None = None,
            class_map: Mapping[int, int] | None = None, progress: Callable[[Progress], None] | None = None,
            should_stop: Callable[[], bool] | None = None, device: str = "auto", allow_engine_host_code: bool = False,
            onnx_tensorrt: bool = False) -> dict:
    """Engine B against engine A (the baseline) on the very frames, in this process: each image decoded
    and each batch rendered once and fed to both (when their preprocessing and input agree; else rendered
    for each). Returns the ``shiftaudit.compare/v1`` comparison (docs/compare.md); ``class_map`` maps
    A's class indices to B's. The other arguments are `audit`'s, for both engines."""
    if isinstance(options, Mapping):
        options = AuditOptions(**options)
    sources = image_sources(Path(images))
    engine_options = EngineOptions(device, allow_engine_host_code, onnx_tensorrt)
    with open_runner(Path(engine_a), engine_options) as a, open_runner(Path(engine_b), engine_options) as b:
        jobs = [Job.prepare(Path(engine), runner, options or AuditOptions(), sources, preprocessing=preprocessing,
                            labels=Path(labels) if labels else None, device=device)
                for engine, runner in ((engine_a, a), (engine_b, b))]
        report_a, report_b = run_together(jobs, progress, should_stop)
    return compare_reports(report_a, report_b, dict(class_map) if class_map is not None else None)


def profile(engine: str | Path, images: str | Path, options: AuditOptions | Mapping[str, Any] | None = None, *,
            tensors: Sequence[str] = ("stages",), preprocessing: Mapping[str, Any] | None = None,
            rise: float = RISE, max_memory: int = MAX_MEMORY, progress: Callable[[Progress], None] | None = None,
            should_stop: Callable[[], bool] | None = None, device: str = "auto") -> dict:
    """The per-layer shiftability profile (``shiftaudit.layers/v1``, docs/layers.md) of the ONNX model
    ``engine`` on the images below ``images``: ``options`` as `audit`'s, one protocol (embed-black, the
    default, or crop); ``tensors`` is ``("stages",)``, ``("all",)`` or tensor names; ``rise`` the finding's
    threshold; ``max_memory`` the bytes of activations one engine call may hand back."""
    if isinstance(options, Mapping):
        options = AuditOptions(**({"protocols": ("embed-black",)} | dict(options)))
    return profile_layers(Path(engine), image_sources(Path(images)), options or AuditOptions(protocols=("embed-black",)),
                          tensors=tensors, preprocessing=dict(preprocessing or {}), rise=rise, max_memory=max_memory,
                          device=device, progress=progress, should_stop=should_stop)


def audit_on_ray(engine: str | Path, images: str | Path, options: AuditOptions | Mapping[str, Any] | None = None, *,
                 ray: RayOptions = RayOptions(), preprocessing: Mapping[str, Any] | None = None,
                 labels: str | Path | None = None, progress: Callable[[Progress], None] | None = None,
                 allow_engine_host_code: bool = False) -> dict:
    """`audit`, on a Ray cluster (``pip install 'shiftaudit[ray]'``): ``images`` is a directory every worker
    can read, or a URI Ray Data reads (``s3://...``, ``gs://...``); ``ray`` says where (``address``: local,
    auto or HOST:PORT; a connection this process already holds is used) and how wide. The report is the
    in-process audit's, with ``ray`` saying how many images were audited, skipped and taken twice."""
    if isinstance(options, Mapping):
        options = AuditOptions(**options)
    return run_on_ray(Path(engine), str(images), options or AuditOptions(), ray, preprocessing=dict(preprocessing or {}),
                      labels=Path(labels) if labels else None, progress=progress,
                      allow_engine_host_code=allow_engine_host_code)
