"""An audit on a Ray cluster, with Ray Data (``pip install 'shiftaudit[ray]'``; docs/scale-out.md).

Ray Data reads the images (local or shared paths, and the cloud URIs it supports) and streams them to a
pool of actors; each actor opens the engine itself (nothing of it is pickled on the driver), renders and
infers in the same process, and returns a part per image: its record and its own statistics. The driver
merges them as every partial result merges (`result.Merge`, by unit key: a task Ray retries after losing
an actor may return an image again, and it is taken once). Statistics are integer sums, so the merged
report is the in-process audit's, bit for bit.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .audit import run_judged
from .errors import AuditError, DeviceError, InputError, OptionError, named
from .files import image_files, listing_order
from .images import decode
from .job import Job
from .labels import Labels, load_labels
from .options import AuditOptions, RayOptions
from .pipeline import require_usable
from .preprocessing import class_names, load_preprocessing
from .progress import Progress
from .render import select_renderer
from .report import Made, assemble
from .result import AuditResult, Merge
from .runners import EngineOptions


class AuditWorker:
    """A Ray actor's audit: the engine opened in the actor, then per call a batch of image files in, a
    row out per image (its part of the audit, and what made it)."""

    def __init__(self, model: str, options: dict, preprocessing: dict, labels: str | None, root: str,
                 gpus: float, threads: int, engine: dict) -> None:
        import cv2

        from .runners import open_runner

        cv2.setNumThreads(threads)
        device = "cuda" if gpus else "cpu"
        self.root = root
        self.runner = open_runner(Path(model), EngineOptions(**{**engine, "device": device, "threads": threads}))
        providers = getattr(self.runner, "providers", ())
        if gpus and providers and "CUDAExecutionProvider" not in providers:  # ORT would run on the CPU, quietly
            raise DeviceError(f"a GPU actor's ONNX Runtime runs on {', '.join(providers)}: install onnxruntime-gpu "
                              "(and its CUDA libraries) on the workers")
        self.renderer = select_renderer(device)
        self.job = Job.prepare(Path(model), self.runner, AuditOptions(**options), [], preprocessing=preprocessing,
                               labels=labels, device=device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        sources = []
        for path, data in zip(batch["path"], batch["bytes"]):
            name = image_name(str(path), self.root)
            if not any(part.startswith(".") for part in PurePosixPath(name).parts):  # as the local listing
                sources.append((name, lambda data=bytes(data), name=name: decode(data, name)))
        job = replace(self.job, sources=sources)
        result = run_judged([job.judge], sources, job.options, job.labels, renderer=self.renderer, part=True,
                            per_image=True)[0]
        made = json.dumps(vars(job.made(result, self.renderer)))
        parts = result.per_image()
        return {"part": [json.dumps(p.to_json()) for p in parts], "made": [made] * len(parts)}


def image_name(path: str, root: str) -> str:
    """An image's name, as `files.image_files` names it: its path relative to the directory audited."""
    return path.rsplit("/", 1)[-1] if path == root else str(PurePosixPath(path).relative_to(root))


def _location(images: str) -> tuple[str | list[str], str, list[str] | None]:
    """What Ray Data reads, the root names are relative to, and the images' names (None: a URI, listed by
    Ray Data). A local directory is listed here, as an audit lists it."""
    if "://" in images:
        return images, images.split("://", 1)[1].rstrip("/"), None
    path = Path(images).resolve()
    files = image_files(path)
    if not files:
        raise InputError(f"no files in {images}")
    return [str(f) for _, f in files], str(path), [name for name, _ in files]


def run_on_ray(model: Path, images: str, options: AuditOptions, ray_options: RayOptions, *,
               preprocessing: dict[str, Any] | None = None, labels: Path | None = None,
               progress: Callable[[Progress], None] | None = None, engine: EngineOptions = EngineOptions()) -> dict:
    """The report of ``model`` audited on ``images`` (a directory, or a URI Ray Data reads) by a pool of
    Ray actors; Ray is started or joined as ``ray_options.address`` says, unless this process already
    holds a connection (which is then used and kept)."""
    try:
        import ray
    except ImportError:
        raise InputError("an audit on Ray needs Ray Data on this machine and the workers: pip install "
                         "'shiftaudit[ray]'") from None

    if options.target_halfwidth is not None:
        raise OptionError(f"an audit on Ray audits every image; {named('target_halfwidth')} needs the images in "
                          "content-hash order (in process, on a server, or as a job array's parts)")
    if engine.onnx_tensorrt and not ray_options.gpus_per_worker:
        raise OptionError(f"{named('onnx_tensorrt')} runs ONNX Runtime's TensorRT provider on a GPU: give the "
                          f"actors GPUs ({named('gpus_per_worker')} above 0)")
    reads, root, listed = _location(images)
    model = model.resolve()
    if not model.is_file():
        raise FileNotFoundError(f"model {model} does not exist")
    pre = load_preprocessing(model, **(preprocessing or {}))
    truth = load_labels(labels, class_names(model, pre), listed) if labels else None  # errors here, before the cluster
    ours = not ray.is_initialized()
    if ours:
        ray.init(**({} if ray_options.address == "local" else {"address": ray_options.address}),
                 include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # our progress bar, not Ray Data's notices
    try:
        from ray.data import ActorPoolStrategy, DataContext, read_binary_files

        DataContext.get_current().enable_progress_bars = False
        workers = ray_options.pool_size(ray.cluster_resources())
        audited = read_binary_files(reads, include_paths=True, num_cpus=0).map_batches(
            AuditWorker, batch_size=ray_options.images_per_batch, compute=ActorPoolStrategy(size=workers),
            num_cpus=ray_options.cpus_per_worker, num_gpus=ray_options.gpus_per_worker or None,
            fn_constructor_kwargs={"model": str(model), "options": options.to_json(),
                                   "preprocessing": dict(preprocessing or {}),
                                   "labels": labels.read_text() if labels else None, "root": root,
                                   "gpus": ray_options.gpus_per_worker, "threads": ray_options.threads,
                                   "engine": asdict(engine)})
        merge, made = Merge(options.protocols), None
        start = time.perf_counter()
        total = len(listed) if listed is not None else None
        try:
            for row in audited.iter_rows():
                made = made or Made(**json.loads(row["made"]))
                merge.take(AuditResult.from_json(json.loads(row["part"])))
                if progress:
                    progress(Progress(len(merge.result.images), total, merge.result.frames, time.perf_counter() - start))
        except Exception as e:  # an actor's AuditError arrives wrapped in Ray's errors: raise it as the audit's
            raise _audit_error(e) from None
        merge.result.seconds = time.perf_counter() - start
    finally:
        if ours:
            ray.shutdown()
    return _report(merge, made, truth, listed, ray_options, workers)


def _audit_error(e: BaseException) -> BaseException:
    """The AuditError (or missing file) behind a Ray error, when an actor raised one; else ``e``."""
    seen = e
    while seen is not None:
        if isinstance(seen, (AuditError, FileNotFoundError)):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    return e


def _report(merge: Merge, made: Made | None, truth: Labels | None, listed: list[str] | None,
            ray_options: RayOptions, workers: int) -> dict:
    result = merge.result
    require_usable(len(result.images), result.skipped)
    names = listed or list(dict.fromkeys([r["image"] for r in result.images] + [s["image"] for s in result.skipped]))
    result = merge.finish(listing_order(names))  # as one process lists them: planned in listing order
    audited = {r["image"] for r in result.images}
    ray = {"address": ray_options.address, "workers": workers, "cpus_per_worker": ray_options.cpus_per_worker,
           "gpus_per_worker": ray_options.gpus_per_worker, "images_listed": len(listed) if listed else None,
           "images_audited": len(audited), "images_skipped": len(set(names) - audited),
           "duplicates_dropped": merge.dropped}
    labels = truth.summary(names, result.classes) if truth is not None else None
    return assemble(made, result, labels=labels, ray=ray).to_json()
