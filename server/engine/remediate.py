"""What a remedy would buy a model, and what it would cost, measured on its own engine
(``shiftaudit.remediate/v1``, docs/remediate.md): each remedy rewrites a copy of the ONNX graph
(`remedies`), every variant is audited with the original on the very frames (`job.run_together`: each
batch rendered once), and against the original, pair by pair (`compare.compare_reports`):

- **gain**: each protocol's P(top-1 change) and MAC, and the paired increase B − A (negative: the variant
  is steadier) with its image-clustered interval and McNemar's test;
- **fidelity**: how often the variant's top-1 class on the unshifted (first) frames is the original's,
  with an interval that takes the image as the unit; with labels, each one's accuracy;
- **cost**: the variant's bare-engine throughput over the original's, timed in the same run on the same
  runner on one batch of zeros (what the rewrite adds to every engine call, not the audit's rendering);
- with ``layers``, each one's layer profile finding: where the invariance breaks after the remedy.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .compare import compare_reports
from .errors import InputError
from .images import image_sources
from .job import Job, run_together, tool_versions
from .labels import Labels
from .layers import LayerOptions, profile_layers
from .metrics import Tally
from .options import AuditOptions
from .preprocessing import METADATA, ORIGINS, Preprocessing, load_preprocessing, sidecar_path
from .progress import Progress
from .remedy import Remedy, RemedyOptions
from .report import sensitivities
from .rewrites import rewrite
from .runners import EngineOptions, Runner, open_runner

SCHEMA = "shiftaudit.remediate/v1"
TIMED_CALLS = 5  # engine calls timed per model, after one untimed (allocation, kernel selection)


@dataclass(frozen=True)
class Variant:
    remedy: Remedy
    record: dict  # what the rewrite did (the variant's `remedies.REMEDY` metadata)
    path: Path


def remediate(model: Path, images: Path, options: AuditOptions, remedies: RemedyOptions = RemedyOptions(), *,
              preprocessing: Mapping[str, Any] | None = None, labels: Path | None = None,
              engine: EngineOptions = EngineOptions(),
              progress: Callable[[Progress], None] | None = None) -> dict:
    """The ``shiftaudit.remediate/v1`` document of ``model`` (an ONNX file, never changed) and each remedy
    of ``remedies`` on the images below ``images``; every rewrite is made and checked before any audit."""
    if not model.is_file():
        raise FileNotFoundError(f"model {model} does not exist")
    try:
        original = onnx.load(str(model))
    except Exception as e:  # protobuf's DecodeError and friends: not an ONNX file
        raise InputError(f"{model}: not an ONNX model ({type(e).__name__}); remedies rewrite ONNX graphs") from None
    pre = load_preprocessing(model, **(preprocessing or {}))
    values = {k: v for k, v in pre.to_json().items() if k in ORIGINS}
    made = [(r, *rewrite(original, r, values)) for r in remedies.chosen()]
    with ExitStack() as stack:
        folder = remedies.write or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shiftaudit-")))
        folder.mkdir(parents=True, exist_ok=True)
        variants = [_save(model, folder, r, proto, record, pre) for r, proto, record in made]
        sources = image_sources(images)
        runners = [stack.enter_context(open_runner(path, engine)) for path in (model, *(v.path for v in variants))]
        jobs = [Job.prepare(path, runner, options, sources, preprocessing=preprocessing if k == 0 else None,
                            labels=labels, device=engine.device)
                for k, (path, runner) in enumerate(zip((model, *(v.path for v in variants)), runners))]
        reports = run_together(jobs, progress)
        speeds = [_throughput(runner, jobs[0].options) for runner in runners]
        findings = [_finding(path, images, options, engine) for path in (model, *(v.path for v in variants))] \
            if remedies.profile else [None] * len(runners)
    truth = jobs[0].labels
    return {"schema": SCHEMA, "tool": tool_versions(),
            "model": {"path": model.name, "sha256": reports[0]["model"]["sha256"],
                      "preprocessing": reports[0]["model"]["preprocessing"]},
            "config": reports[0]["config"], "device": reports[0]["device"], "images": len(reports[0]["images"]),
            "original": {"protocols": sensitivities(reports[0]), "accuracy": _accuracy(reports[0], truth),
                         "frames_per_second": speeds[0], "layers": findings[0]},
            "variants": [_variant(v, reports[0], report, truth, speed, speeds[0], finding, remedies.write is not None)
                         for v, report, speed, finding in zip(variants, reports[1:], speeds[1:], findings[1:])]}


def _save(model: Path, folder: Path, remedy: Remedy, proto: onnx.ModelProto, record: dict,
          pre: Preprocessing) -> Variant:
    """The variant as an ONNX file; when the original's sidecar names a file of class names, that file and a
    sidecar naming it beside the variant too (a metadata_props entry cannot name a file)."""
    path = folder / f"{model.stem}.{remedy.name}.onnx"
    if path.resolve() == model.resolve():
        raise InputError(f"{path} is the model itself: write the variants elsewhere")
    onnx.save(proto, str(path))
    if pre.labels:
        source = sidecar_path(model).parent / pre.labels
        if source.resolve() != (folder / source.name).resolve():
            shutil.copy(source, folder / source.name)
        values = json.loads(next(p.value for p in proto.metadata_props if p.key == METADATA))
        sidecar_path(path).write_text(json.dumps({**values, "labels": source.name}) + "\n")
    return Variant(remedy, record, path)


def _throughput(runner: Runner, options: AuditOptions) -> float:
    """Frames a second of bare engine calls on one batch of zeros of the audit's size."""
    spec = runner.input_spec()
    h, w = options.canvas
    shape = (options.batch, 3, h, w) if spec.layout == "NCHW" else (options.batch, h, w, 3)
    batch = np.zeros(shape, spec.dtype)
    runner.infer(batch)
    start = time.perf_counter()
    for _ in range(TIMED_CALLS):
        runner.infer(batch)
    return round(TIMED_CALLS * options.batch / (time.perf_counter() - start), 1)


def _finding(model: Path, images: Path, options: AuditOptions, engine: EngineOptions) -> dict:
    protocol = "embed-black" if "embed-black" in options.protocols or "crop" not in options.protocols else "crop"
    doc = profile_layers(model, image_sources(images), replace(options, protocols=(protocol,), batch=None),
                         LayerOptions(), device=engine.device)
    return doc["finding"]


def _first_frames(report: dict) -> dict[str, dict[tuple, int]]:
    """Per image (by digest), each unit's first-frame top-1 class."""
    return {r["sha256"]: {(u["protocol"], u["index"]): u["top1"][0] for u in r["units"]} for r in report["images"]}


def fidelity(a: dict, b: dict) -> dict:
    """How often B's top-1 class on the unshifted (first) frames is A's: the agreement with a 95 % interval
    taking the image as the unit (an image's units are not independent draws)."""
    firsts_b = _first_frames(b)
    total = Tally()
    for digest, units in _first_frames(a).items():
        differ = sum(c != firsts_b[digest][key] for key, c in units.items())
        total.add_image(Tally(pairs=len(units), changes=differ))
    d = total.p_top1_change()
    return {"value": None if d["value"] is None else 1 - d["value"], "ci95": [1 - d["ci95"][1], 1 - d["ci95"][0]],
            "frames": total.pairs}


def _accuracy(report: dict, truth: Labels | None) -> dict | None:
    """With labels: the share of labelled units whose first frame is classed right, image-clustered."""
    if not truth:
        return None
    total = Tally()
    for r in report["images"]:
        if r["label"] is not None:
            total.add_image(Tally(pairs=len(r["units"]), changes=sum(u["top1"][0] == r["label"] for u in r["units"])))
    return {**total.p_top1_change(), "frames": total.pairs}


def _variant(v: Variant, a: dict, b: dict, truth: Labels | None, speed: float, base: float, finding: dict | None,
             written: bool) -> dict:
    comparison = compare_reports(a, b)
    protocols = {name: {**sensitivities(b)[name], "p_top1_change_increase": p["p_top1_change_increase"],
                        "mac_increase": p["mac_increase"], "mcnemar_p": p["mcnemar_p"]}
                 for name, p in comparison["protocols"].items()}
    judged = [p["p_top1_change_increase"]["value"] for name, p in protocols.items()
              if name != "null" and p["p_top1_change_increase"]["value"] is not None]
    accuracy = _accuracy(b, truth)
    return {"name": v.remedy.name, "remedy": v.record, "file": str(v.path) if written else None,
            "gain": None if not judged else round(-float(np.mean(judged)), 6), "protocols": protocols,
            "fidelity": fidelity(a, b), "accuracy": accuracy,
            "accuracy_change": None if accuracy is None or accuracy["value"] is None
            else round(accuracy["value"] - _accuracy(a, truth)["value"], 6),
            "cost": {"frames_per_second": speed, "throughput_ratio": round(speed / base, 3) if base else None},
            "layers": finding}
