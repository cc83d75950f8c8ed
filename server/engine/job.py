"""One audit job, as the CLI, the Python API, the service and a Ray actor run it: the model's
preprocessing, class names and labels read, the options resolved against the open model, the audit run
on the chosen renderer, and its report assembled."""
from __future__ import annotations

import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .audit import Judge, run_judged
from .budget import ImageMemory, MemoryBudget
from .compare import CompareError
from .files import Shard, file_sha256
from .images import ImageSource
from .labels import Labels, load_labels, parse_labels
from .options import AuditOptions
from .preprocessing import Preprocessing, class_names, load_preprocessing
from .progress import Progress
from .render import Renderer, select_renderer
from .report import Made, Report, assemble
from .report_size import report_bytes_bound
from .result import AuditResult
from .resume import check_same_audit, resumed
from .runners import Runner
from .runners.tensorrt import tensorrt_version


@dataclass(frozen=True)
class Job:
    """Everything one audit needs, ready to run."""

    model: Path
    runner: Runner
    preprocessing: Preprocessing
    options: AuditOptions  # resolved against the runner's model
    sources: list[ImageSource]
    labels: Labels | None = None
    names: list[str] | None = None  # the model's class names, when its sidecar names a file of them
    device: str = "auto"  # where frames are rendered (render.DEVICES)
    memory: ImageMemory | None = None  # what its images may take, within a server's budget; None: no limit
    listed: list[str] | None = None  # every image name of the directory, when the sources are a shard of it
    shard: Shard | None = None  # which shard the sources are
    resume: Report | None = None  # an interrupted run's partial report, which this job continues
    audit_id: str | None = None  # a server's id of the audit, which its report records

    @classmethod
    def prepare(cls, model: Path, runner: Runner, options: AuditOptions, sources: list[ImageSource], *,
                preprocessing: Mapping[str, Any] | None = None, labels: Path | str | None = None,
                device: str = "auto", budget: MemoryBudget | None = None, listed: list[str] | None = None,
                shard: Shard | None = None, resume: Report | None = None) -> Job:
        """``preprocessing`` overrides the sidecar's values; ``labels`` is a labels file, or its text;
        options over the ``budget`` are refused (OverBudget) before anything runs; ``listed``: every image
        name of the directory, when ``sources`` are ``shard`` of it; ``resume``: an interrupted run's
        partial report (`resume.partial_report`) of this very audit (checked here), to continue."""
        pre = load_preprocessing(model, **(preprocessing or {}))
        names = class_names(model, pre)
        images = listed if listed is not None else [name for name, _ in sources]
        truth = (load_labels(labels, names, images) if isinstance(labels, Path)
                 else parse_labels(labels, names, images=images)) if labels else None
        resolved = options.resolved(runner.input_spec())
        if resume is not None:
            check_same_audit(resume, file_sha256(model), pre.to_json(), resolved.to_json())
        memory = budget.check(resolved, runner) if budget else None
        return cls(model, runner, pre, resolved, sources, truth, names, device, memory, listed, shard, resume)

    def report_bytes_bound(self) -> int:
        """At least the bytes of this job's JSON report (`report_size`), before it runs."""
        return report_bytes_bound(self.options, [name for name, _ in self.sources], self.names)

    @property
    def judge(self) -> Judge:
        return Judge(self.runner, self.preprocessing, self.names)

    def run(self, progress: Callable[[Progress], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> dict:
        """The report, as JSON."""
        return run_together([self], progress, should_stop)[0]

    def made(self, result: AuditResult, renderer: Renderer) -> Made:
        """What made this job's report."""
        model = {"path": self.model.name, "sha256": file_sha256(self.model), **self.runner.describe(),
                 "preprocessing": self.preprocessing.to_json(), "classes": len(self.names) if self.names else None,
                 "outputs": result.classes}
        return Made(tool_versions(), model, self.options.to_json(),
                    {"render": renderer.name, "inference": inference_site(renderer, self.runner)})

    def report(self, result: AuditResult, renderer: Renderer) -> dict:
        labels = None if self.labels is None else \
            self.labels.summary([name for name, _ in self.sources], result.classes, self.listed)
        shard = None if self.shard is None else {**self.shard.to_json(), "images_listed": len(self.listed or [])}
        return assemble(self.made(result, renderer), result, labels=labels, shard=shard,
                        audit={"id": self.audit_id} if self.audit_id else None).to_json()


def run_together(jobs: Sequence[Job], progress: Callable[[Progress], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> list[dict]:
    """The reports of jobs that are one audit (the same options and images) of several engines, judged on
    the very frames: each image decoded and each batch rendered once (`audit.run_judged`). They run at
    the smallest of their batches, which every report then records."""
    first = jobs[0]
    for job in jobs[1:]:
        if job.options.canvas != first.options.canvas:
            (h1, w1), (h2, w2) = first.options.canvas, job.options.canvas
            raise CompareError(f"the engines take inputs of different sizes ({h1}x{w1} and {h2}x{w2}): they cannot "
                               "see identical frames")
    options = replace(first.options, batch=min(job.options.batch for job in jobs))
    jobs = [replace(job, options=options) for job in jobs]
    renderer = select_renderer(first.device)
    start, sources = resumed(first.resume, first.sources) if first.resume else (None, first.sources)
    results = run_judged([job.judge for job in jobs], sources, options, labels=first.labels,
                         progress=progress, should_stop=should_stop, renderer=renderer,
                         memory=first.memory, part=first.listed is not None, start=start)
    return [job.report(result, renderer) for job, result in zip(jobs, results)]


def tool_versions() -> dict:
    """What made the report. ONNX Runtime's version comes from the module: in the GPU image the
    distribution is onnxruntime-gpu."""
    import onnxruntime

    return {"name": "shiftaudit", "version": package_version("shiftaudit"), "onnxruntime": onnxruntime.__version__,
            "tensorrt": tensorrt_version(), "python": platform.python_version()}


def package_version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def inference_site(renderer: Renderer, runner: Runner) -> str:
    """Where the engine reads the batches, for the report."""
    if renderer.device == "cpu":
        return f"cpu ({runner.name})"
    if renderer.device in runner.memory_devices:
        return f"{renderer.device} ({runner.name}, reading the rendered batch in place)"
    return f"cpu ({runner.name}; batches copied to the host)"
