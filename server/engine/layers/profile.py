"""The per-layer shiftability profile (`audit-client layers`; docs/layers.md): an audit's frames (the same
options, seed and preprocessing) translated by the one-pixel shift and by each whole stride, rendered
in batches of whole units, one engine call per batch on the copy of the model that outputs the chosen
activations, and the measures of every unit summed per tensor (`shiftability`). A batch's activations
are let go before the next batch is inferred: what the profile holds is bounded by one batch's
(``max_memory``), whatever the number of images.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, OptionError
from ..files import file_sha256
from ..images import ImageSource, SourceImage
from ..job import inference_site, tool_versions
from ..options import AuditOptions
from ..pipeline import plan_image, require_usable, stream
from ..preprocessing import Preprocessing, load_preprocessing
from ..progress import Progress
from ..protocols import STEP_PROTOCOLS, Unit, plan_steps
from ..render import Frame, Renderer, select_renderer
from ..runners.base import InputSpec, engine_calls, engine_failure
from ..runners.onnxruntime import OnnxRuntimeRunner, providers_for
from . import OPTIONS, LayerOptions
from .graph import Graph, Tensor, check_onnx
from .shiftability import MEASURES, Sums, interior, pooled_error, shift_error, translate, whole_move

SCHEMA = "shiftaudit.layers/v2"  # v2: sums over images too (image-clustered intervals)
READABLE = ("shiftaudit.layers/v1", SCHEMA)  # profiles a view renders again; a merge takes v2 ones only
CAVEAT = ("A blur before the subsampling (BlurPool, Zhang 2019) makes the subsampled tensor closer to shiftable, "
          "but a nonlinearity after it can bring high frequencies back (the paper's §3, Observation 2, and §5.1): "
          "profile the model again after the change.")


@dataclass
class _Image:
    """An image whose units are in flight, and the sums of those done (they enter the profile together)."""

    name: str
    left: int
    sums: dict[str, dict[str, Sums]] = field(default_factory=dict)


@dataclass
class Profile:
    """The sums of a profile run (or of one shard of it), per tensor and measure."""

    tensors: list[Tensor]
    steps: tuple[int, ...]  # frame i of a unit is frame A translated by steps[i]·shift
    sums: dict[str, dict[str, Sums]] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    units: int = 0
    frames: int = 0

    def __post_init__(self) -> None:
        self.sums = self.sums or {t.name: {m: Sums() for m in MEASURES} for t in self.tensors}

    def skip(self, name: str, protocol: str, reason: str, strict: bool) -> None:
        """An image the profile cannot use is listed, or stops a strict profile (as in an audit)."""
        if strict:
            raise InputError(reason)
        self.skipped.append({"image": name, "protocol": protocol, "reason": reason})

    def add_unit(self, unit: Unit, activations: dict[str, np.ndarray], at: int, image: _Image) -> None:
        """The measures of one unit, whose frames are rows ``at``.. of each tensor's batch, into its image's
        sums; the image's sums into the profile's, as one cluster, with its last unit."""
        (x0, y0), (x1, y1) = unit.frames[0].dst[:2], unit.frames[1].dst[:2]
        move = (y1 - y0, x1 - x0)  # canvas pixels, rows and columns
        for t in self.tensors:
            frames = activations[t.name]
            a, b = (t.frame(frames[at + i]) for i in (0, 1))
            sums = image.sums.setdefault(t.name, {m: Sums() for m in MEASURES})
            sums["pooled_invariance"].add(pooled_error(a, b))
            cells = (move[0] / t.stride[0], move[1] / t.stride[1])
            sums["shiftability"].add(shift_error(translate(a, cells), b,
                                                 interior(t.shape[1:], t.receptive_field, t.stride, cells)))
            k = t.whole_stride
            if k is not None:
                c = t.frame(frames[at + self.steps.index(k)])
                whole = (round(k * move[0] / t.stride[0]), round(k * move[1] / t.stride[1]))
                sums["equivariance"].add(shift_error(whole_move(a, whole), c,
                                                     interior(t.shape[1:], t.receptive_field, t.stride, whole)))
        self.units += 1
        self.frames += len(unit.frames)
        image.left -= 1
        if not image.left:
            for name, measures in image.sums.items():
                for measure, sums in measures.items():
                    self.sums[name][measure].add_image(sums)
            self.images.append(image.name)


def steps_for(tensors: Sequence[Tensor]) -> tuple[int, ...]:
    """Frame A, the one-pixel shift, and one frame per whole stride (the equivariance measure's)."""
    return tuple(sorted({0, 1} | {k for t in tensors if (k := t.whole_stride)}))


def units_per_batch(graph: Graph, tensors: Sequence[Tensor], steps: Sequence[int], options: AuditOptions,
                    max_memory: int) -> int:
    """Whole units per engine call: as many as the batch option allows and the activations they hand back
    fit in ``max_memory``; one at least (a single unit over the budget still runs, and the report says so)."""
    per_unit = len(steps) * graph.frame_bytes(tensors)
    return max(1, min(options.batch // len(steps), max_memory // max(1, per_unit)))


class _Profiling:
    """A profile run's consumer of rendered batches (`pipeline.stream`): each batch's activations, the
    measures of its units, its images counted done."""

    done = False  # a profile takes every image

    def __init__(self, profile: Profile, session: Any, spec: InputSpec, options: AuditOptions,
                 images_total: int | None) -> None:
        self.profile, self.session, self.spec, self.options, self.total = profile, session, spec, options, images_total
        self.exposed = [t.name for t in profile.tensors if t.node is not None]

    def groups(self, sources: Iterable[ImageSource]) -> Iterator[list[tuple[Frame, tuple[Unit, _Image]]]]:
        """Per image, its units' frames with their tags; what an image cannot serve is skipped."""
        def skip(name: str, why: str, protocol: str | None) -> None:
            self.profile.skip(name, self.options.protocols[0], why, self.options.strict)

        def steps(protocol: str, image: SourceImage) -> list[Unit]:
            return plan_steps(protocol, image.size, image.digest, self.options, self.profile.steps)

        for name, load in sources:
            planned = plan_image(name, load, self.options.protocols[:1], steps, skip)
            if planned is not None:
                image, units = planned
                entry = _Image(name, len(units))
                yield [((image, p), (unit, entry)) for unit in units for p in unit.frames]

    def take(self, batch: np.ndarray, tags: list[tuple[Unit, _Image]]) -> None:
        outputs = _infer(self.session, self.spec, self.exposed, batch)
        outputs[self.spec.name] = batch
        frames = len(self.profile.steps)
        for at in range(0, len(tags), frames):
            unit, image = tags[at]
            self.profile.add_unit(unit, outputs, at, image)

    def progress(self, seconds: float) -> Progress:
        p = self.profile
        expected = (self.total - len(p.skipped)) * self.options.pairs_per_image * len(p.steps) if self.total else None
        return Progress(len(p.images), self.total, p.frames, seconds, frames_total=expected)


def run_profile(graph: Graph, tensors: list[Tensor], pre: Preprocessing, options: AuditOptions,
                sources: Iterable[ImageSource], renderer: Renderer, session: Any, units: int,
                progress: Callable[[Progress], None] | None = None,
                should_stop: Callable[[], bool] | None = None, images_total: int | None = None) -> Profile:
    """Profile ``tensors`` of ``graph`` on ``sources`` (``session``: `Graph.session` of those tensors); a
    batch's activations are let go before the next batch is inferred."""
    profile = Profile(tensors, steps_for(tensors))
    spec, norm = graph.spec, pre.normalisation()
    profiling = _Profiling(profile, session, spec, options, images_total)

    def render(frames: list[Frame]) -> np.ndarray:
        return renderer.render(frames, norm, spec.layout, spec.dtype).to_host()

    stream(profiling.groups(sources), units * len(profile.steps), render, profiling, progress, should_stop)
    require_usable(len(profile.images), profile.skipped)
    return profile


def _infer(session: Any, spec: InputSpec, names: list[str], batch: np.ndarray) -> dict[str, np.ndarray]:
    """The exposed activations of a batch, in engine calls the model's batch dimension allows (none asked
    for: the input alone is profiled)."""
    if not names:
        return {}
    parts: list[list[np.ndarray]] = []
    for chunk, m in engine_calls(batch, *spec.batch_range()):
        try:
            parts.append([out[:m] for out in session.run(names, {spec.name: chunk})])
        except Exception as e:
            raise engine_failure(e, f"ONNX Runtime failed on a batch of {m} with the activations exposed") from None
    return {name: (np.concatenate([p[j] for p in parts]) if len(parts) > 1 else parts[0][j])
            for j, name in enumerate(names)}


def profile_layers(model: Path, sources: Sequence[ImageSource], options: AuditOptions,
                   layers: LayerOptions = LayerOptions(), *, preprocessing: dict | None = None, device: str = "auto",
                   progress: Callable[[Progress], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> dict:
    """The ``shiftaudit.layers/v2`` profile of the ONNX model at ``model`` on ``sources``."""
    if len(options.protocols) != 1 or options.protocols[0] not in STEP_PROTOCOLS:
        raise OptionError(f"a layer profile takes one protocol, {' or '.join(STEP_PROTOCOLS)}; not "
                          f"{', '.join(options.protocols)}")
    check_onnx(model)
    pre = load_preprocessing(model, **(preprocessing or {}))
    providers = providers_for(device, False)
    with OnnxRuntimeRunner(model, providers) as runner:
        spec, used = runner.input_spec(), list(runner.providers)
    resolved = options.resolved(spec)
    graph = Graph(model, spec, resolved.canvas)
    chosen = graph.select(layers.tensors)
    units = units_per_batch(graph, chosen, steps_for(chosen), resolved, layers.max_memory)
    renderer = select_renderer(device)
    session = graph.session([t.name for t in chosen if t.node is not None], providers)
    start = time.perf_counter()
    profile = run_profile(graph, chosen, pre, resolved, sources, renderer, session, units, progress, should_stop,
                          len(sources))
    described = {"schema": SCHEMA, "tool": tool_versions(),
                 "model": {"path": model.name, "sha256": file_sha256(model), "runner": "onnxruntime",
                           "providers": used, "input": spec.to_json(), "preprocessing": pre.to_json()},
                 "config": {**{k: v for k, v in resolved.to_json().items() if k in OPTIONS}, **layers.to_json()},
                 "device": {"render": renderer.name, "inference": inference_site(renderer, runner)},
                 "memory": {"units_per_batch": units, "frames_per_batch": units * len(profile.steps),
                            "batch_bytes": (held := units * len(profile.steps) * graph.frame_bytes(chosen)),
                            "over_budget": held > layers.max_memory},
                 "steps": list(profile.steps), "seconds": round(time.perf_counter() - start, 3)}
    return build(described, profile)


def build(described: dict, profile: Profile) -> dict:
    """The document: what was profiled (``described``), the counts, each tensor's row and the finding."""
    return summarise({**described, "images": profile.images, "skipped": profile.skipped, "units": profile.units,
                      "frames": profile.frames, "tensors": [t.to_json() for t in profile.tensors],
                      "sums": {name: {m: s.to_json() for m, s in sums.items()} for name, sums in profile.sums.items()}})


def summarise(doc: dict) -> dict:
    """Each tensor's measures (from the document's sums) and the finding, written into ``doc``."""
    for row in doc["tensors"]:
        sums = doc["sums"][row["name"]]
        for measure in MEASURES:
            row[measure] = Sums.from_json(sums[measure]).summary()
    doc["finding"] = finding(doc["tensors"], doc["config"]["rise"])
    return doc


def finding(rows: list[dict], rise: float) -> dict:
    """The first tensor whose mean pooled invariance or shiftability error rises by more than ``rise``
    over the tensor before it, and the subsampling op that set its resolution: where to antialias."""
    before: dict[str, float | None] = {"pooled_invariance": None, "shiftability": None}
    for row in rows:
        rises = {m: row[m]["value"] - v for m, v in before.items() if v is not None and row[m]["value"] is not None}
        measure = max(rises, key=rises.get) if rises else None
        if measure and rises[measure] > rise:
            sub = row["subsampled_by"]
            stride = "x".join(str(s) for s in dict.fromkeys(row["stride"]))
            where = (f"it follows {sub['node']} ({sub['op']}), the subsampling to stride {stride}: antialias there "
                     "(a blur before the subsampling, or a stronger one)") if sub else \
                "no subsampling precedes it: look at the op itself and the padding"
            text = (f"the {measure.replace('_', ' ')} error rises by {rises[measure]:.3f} (from {before[measure]:.3f} to "
                    f"{row[measure]['value']:.3f}) at {row['name']} ({row['op']}, stride {stride}); {where}")
            return {"tensor": row["name"], "measure": measure, "rise": rises[measure],
                    "subsampled_by": sub, "text": text, "caveat": CAVEAT}
        for m in before:
            if row[m]["value"] is not None:
                before[m] = row[m]["value"]
    return {"tensor": None, "measure": None, "rise": None, "subsampled_by": None,
            "text": f"no tensor's pooled invariance or shiftability error rises by more than {rise:g} over the one "
                    "before it", "caveat": CAVEAT}


class ProfileMergeError(InputError):
    """Profiles that are not shards of one profile."""


def _check_shards(docs: Sequence[dict]) -> None:
    """Profiles of one model, options and tensors, on disjoint images; else ProfileMergeError."""
    first = docs[0]
    for doc in docs:
        if doc.get("schema") != SCHEMA:
            raise ProfileMergeError(f"not a {SCHEMA} profile")
        for key, what in (("config", "options"), ("steps", "frames")):
            if doc[key] != first[key]:
                raise ProfileMergeError(f"the profiles differ in their {what}: not shards of one profile")
        if doc["model"]["sha256"] != first["model"]["sha256"]:
            raise ProfileMergeError("the profiles are of different models")
        if [t["name"] for t in doc["tensors"]] != [t["name"] for t in first["tensors"]]:
            raise ProfileMergeError("the profiles are of different tensors")
    seen = [name for doc in docs for name in doc["images"]]
    if len(seen) != len(set(seen)):
        raise ProfileMergeError("an image is in more than one shard: it would count twice")


def _summed(docs: Sequence[dict], tensor: str, measure: str) -> list[int]:
    total = Sums()
    for doc in docs:
        total.merge(Sums.from_json(doc["sums"][tensor][measure]))
    return total.to_json()


def merge_profiles(docs: Sequence[dict]) -> dict:
    """One profile from profiles of disjoint image shards (same model, options and tensors): the sums
    added (exactly), images and skips listed, the measures and the finding computed anew."""
    _check_shards(docs)
    first = docs[0]
    merged = {**first, "images": [name for doc in docs for name in doc["images"]],
              "skipped": [s for doc in docs for s in doc["skipped"]],
              "units": sum(d["units"] for d in docs), "frames": sum(d["frames"] for d in docs),
              "seconds": max(d["seconds"] for d in docs),
              "sums": {name: {m: _summed(docs, name, m) for m in MEASURES} for name in first["sums"]},
              "tensors": [{k: v for k, v in t.items() if k not in MEASURES} for t in first["tensors"]]}
    return summarise(merged)
