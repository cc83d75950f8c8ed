"""The Python API: an audit, a comparison of two engines, a layer profile, in this process or on a Ray
cluster. Each call takes the option groups (`AuditOptions`, `EngineOptions`, `LayerOptions`, `RayOptions`)
rather than their fields one by one, and returns the JSON document of its schema."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shiftaudit.server.engine.compare import compare_reports
from shiftaudit.server.engine.files import Shard, image_files
from shiftaudit.server.engine.images import image_sources
from shiftaudit.server.engine.job import Job, run_together
from shiftaudit.server.engine.layers import PROTOCOL, LayerOptions, profile_layers
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.progress import Progress
from shiftaudit.server.engine.resume import check_files, partial_report
from shiftaudit.server.engine.runners import EngineOptions, open_runner
from shiftaudit.server.engine.scale_out import RayOptions, run_on_ray

Options = AuditOptions | Mapping[str, Any] | None
Callback = Callable[[Progress], None] | None
Stop = Callable[[], bool] | None


def _options(options: Options, **defaults: Any) -> AuditOptions:
    """`AuditOptions`, or a mapping of its fields (over ``defaults``)."""
    if isinstance(options, AuditOptions):
        return options
    return AuditOptions(**(defaults | dict(options or {})))


def audit(engine: str | Path, images: str | Path, options: Options = None, *,
          preprocessing: Mapping[str, Any] | None = None, labels: str | Path | None = None,
          engine_options: EngineOptions = EngineOptions(), shard: Shard | None = None, progress: Callback = None,
          should_stop: Stop = None, resume: Mapping[str, Any] | None = None) -> dict:
    """Audit the model file ``engine`` on every image below the directory ``images``; returns the
    ``shiftaudit.report/v2`` report. ``options`` (`AuditOptions`, or a mapping of its fields: protocols,
    size, shift, seed, ...; the canvas defaults to the model's input size), ``preprocessing`` overrides the
    sidecar's values (`Preprocessing` fields), ``labels`` is a file of ``image,label`` lines,
    ``engine_options`` says where frames are rendered and how the engine is opened; ``shard`` (`Shard`)
    audits one shard of the images (a job array's part, which `shiftaudit.server.engine.report.merge_parts`
    merges). ``progress`` is called after every batch; ``should_stop`` is asked before every batch: when it
    says yes, the audit ends with a partial report of the images finished, its ``interrupted`` naming the
    images left, which ``resume`` (that report, with the same arguments) continues to the report an
    uninterrupted audit gives.

    Raises `InputError` (its subclass `OptionError` for a misspelt or out-of-range option), `ModelError` or
    `DeviceError`, all `AuditError`s exported by ``shiftaudit.client``."""
    engine, options = Path(engine), _options(options)
    sources = image_sources(Path(images), shard=shard, by_content=options.target_halfwidth is not None)
    files = image_files(Path(images)) if shard or resume is not None else []  # listed again only when needed
    partial = partial_report(dict(resume)) if resume is not None else None
    if partial is not None:
        check_files(partial, files)
    with open_runner(engine, engine_options) as runner:
        job = Job.prepare(engine, runner, options, sources, preprocessing=preprocessing,
                          labels=Path(labels) if labels else None, device=engine_options.device,
                          listed=[name for name, _ in files] if shard else None, shard=shard, resume=partial)
        return job.run(progress, should_stop)


def compare(engine_a: str | Path, engine_b: str | Path, images: str | Path, options: Options = None, *,
            preprocessing: Mapping[str, Any] | None = None, labels: str | Path | None = None,
            class_map: Mapping[int, int] | None = None, engine_options: EngineOptions = EngineOptions(),
            progress: Callback = None, should_stop: Stop = None) -> dict:
    """Engine B against engine A (the baseline) on the very frames, in this process: each image decoded
    and each batch rendered once and fed to both (when their preprocessing and input agree; else rendered
    for each). Returns the ``shiftaudit.compare/v1`` comparison (docs/compare.md); ``class_map`` maps
    A's class indices to B's. The other arguments are `audit`'s, for both engines."""
    options, sources = _options(options), image_sources(Path(images))
    with open_runner(Path(engine_a), engine_options) as a, open_runner(Path(engine_b), engine_options) as b:
        jobs = [Job.prepare(Path(engine), runner, options, sources, preprocessing=preprocessing,
                            labels=Path(labels) if labels else None, device=engine_options.device)
                for engine, runner in ((engine_a, a), (engine_b, b))]
        report_a, report_b = run_together(jobs, progress, should_stop)
    return compare_reports(report_a, report_b, dict(class_map) if class_map is not None else None)


def profile(engine: str | Path, images: str | Path, options: Options = None, *, layers: LayerOptions = LayerOptions(),
            preprocessing: Mapping[str, Any] | None = None, engine_options: EngineOptions = EngineOptions(),
            progress: Callback = None, should_stop: Stop = None) -> dict:
    """The per-layer shiftability profile (``shiftaudit.layers/v2``, docs/layers.md) of the ONNX model
    ``engine`` on the images below ``images``: ``options`` as `audit`'s, one protocol (embed-black, the
    default, or crop); ``layers``: which tensors, the finding's threshold, the activations one engine call
    may hand back."""
    return profile_layers(Path(engine), image_sources(Path(images)), _options(options, protocols=(PROTOCOL,)),
                          layers, preprocessing=dict(preprocessing or {}), device=engine_options.device,
                          progress=progress, should_stop=should_stop)


def audit_on_ray(engine: str | Path, images: str | Path, options: Options = None, *, ray: RayOptions = RayOptions(),
                 preprocessing: Mapping[str, Any] | None = None, labels: str | Path | None = None,
                 engine_options: EngineOptions = EngineOptions(), progress: Callback = None) -> dict:
    """`audit`, on a Ray cluster (``pip install 'shiftaudit[ray]'``): ``images`` is a directory every worker
    can read, or a URI Ray Data reads (``s3://...``, ``gs://...``); ``ray`` says where (``address``: local,
    auto or HOST:PORT; a connection this process already holds is used) and how wide. The report is the
    in-process audit's, with ``ray`` saying how many images were audited, skipped and taken twice. The
    actors render on the GPU when they have one (``ray.gpus_per_worker``), else on the CPU."""
    return run_on_ray(Path(engine), str(images), _options(options), ray, preprocessing=dict(preprocessing or {}),
                      labels=Path(labels) if labels else None, progress=progress, engine=engine_options)
