"""The audit: images -> plan -> render -> infer -> score -> metrics (DESIGN.md §2).

Rendering runs in a producer thread ahead of inference (at most two finished batches wait in the
queue), so batch k+1 renders while the engine (which releases the GIL) runs batch k. Producer and
consumer both check for a cancel before each batch. A unit's frames may straddle batches; its
probabilities are collected until its last frame is back, then it is scored and forgotten.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .geometry import Placement
from .images import ImageError, SourceImage
from .labels import label_for
from .metrics import ProtocolStats
from .preprocessing import Preprocessing
from .protocols import PAIR_PROTOCOLS, PROTOCOLS, SEQUENCE_PROTOCOLS, PlanConfig, TooSmall, Unit, plan
from .render import Renderer
from .render.cpu import CpuRenderer
from .runners import Runner
from .score import detect_output_kind, probabilities, score_unit

ImageSource = tuple[str, Callable[[], SourceImage]]  # name, and how to decode it when its turn comes
DEFAULT_PROTOCOLS = PAIR_PROTOCOLS
MAX_BATCH = 4096


class Cancelled(Exception):
    """The caller asked the audit to stop."""


class InputError(ValueError):
    """Bad input in strict mode, or no usable input at all."""


@dataclass(frozen=True)
class AuditConfig:
    protocols: tuple[str, ...] = DEFAULT_PROTOCOLS
    plan: PlanConfig = PlanConfig()
    batch: int = 32
    strict: bool = False  # a bad image stops the audit instead of being skipped

    def __post_init__(self) -> None:
        unknown = [p for p in self.protocols if p not in PROTOCOLS]
        if unknown or not self.protocols:
            raise ValueError(f"unknown protocol {', '.join(unknown) or '(none)'}; choose from {', '.join(PROTOCOLS)}")
        if not 1 <= self.batch <= MAX_BATCH:
            raise ValueError(f"batch must lie in 1..{MAX_BATCH}")

    def to_json(self) -> dict:
        p = self.plan
        return {"protocols": list(self.protocols), "seed": p.seed, "canvas": list(p.canvas), "size": p.size,
                "shift": list(p.shift), "pairs_per_image": p.pairs_per_image, "filter": p.filter,
                "sweep_pixels": p.sweep_pixels, "sweep_step": p.sweep_step, "size_sweep": list(p.size_sweep),
                "batch": self.batch, "strict": self.strict}


@dataclass
class AuditResult:
    """Mergeable outcome of an audit (or of one shard of it)."""

    stats: dict[str, ProtocolStats] = field(default_factory=dict)
    images: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    frames: int = 0
    output_kind: str | None = None
    seconds: float = 0.0

    def merge(self, other: AuditResult) -> None:
        for name, s in other.stats.items():
            self.stats.setdefault(name, ProtocolStats(s.kind)).merge(s)
        self.images += other.images
        self.skipped += other.skipped
        self.frames += other.frames
        self.output_kind = self.output_kind or other.output_kind
        self.seconds = max(self.seconds, other.seconds)


@dataclass
class _Pending:
    """A unit in flight: its frames' probabilities arrive batch by batch."""

    unit: Unit
    record: dict
    probs: list = field(default_factory=list)


@dataclass
class Progress:
    images_done: int
    images_total: int | None
    frames: int
    seconds: float


def run_audit(runner: Runner, sources: Sequence[ImageSource] | Iterable[ImageSource], pre: Preprocessing,
              config: AuditConfig, labels: dict[str, int] | None = None,
              progress: Callable[[Progress], None] | None = None,
              should_stop: Callable[[], bool] | None = None, renderer: Renderer | None = None) -> AuditResult:
    """Audit ``runner`` on ``sources`` under every protocol of ``config``; ``renderer`` makes the engine's
    input batches (the CPU renderer by default, or the kernels on a GPU)."""
    renderer = renderer or CpuRenderer()
    spec = runner.input_spec()
    norm = pre.normalisation()
    total = len(sources) if isinstance(sources, Sequence) else None
    result = AuditResult(stats={p: ProtocolStats("sequence" if p in SEQUENCE_PROTOCOLS else "pair")
                                for p in config.protocols})
    stop = threading.Event()
    batches: queue.Queue = queue.Queue(maxsize=2)
    start = time.perf_counter()

    def put(item) -> None:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        frames: list[tuple[SourceImage, Placement]] = []
        refs: list[_Pending] = []  # the unit of each frame in the batch, in order

        def halted() -> bool:
            """Checked before every image and every batch, so a cancel stops the rendering too."""
            if stop.is_set():
                return True
            if should_stop and should_stop():
                put(Cancelled("audit cancelled"))
                return True
            return False

        def flush() -> bool:
            if frames:
                if halted():
                    return False
                put((renderer.render(frames, norm, spec.layout, spec.dtype), list(refs)))
                frames.clear()
                refs.clear()
            return True

        try:
            for name, load in sources:
                if halted():
                    return
                planned = _image_units(name, load, config, labels, result.skipped)
                if planned is None:
                    continue
                image, units, record = planned
                record["_left"] = len(units)
                for unit in units:
                    pending = _Pending(unit, record)
                    for placement in unit.frames:
                        frames.append((image, placement))
                        refs.append(pending)
                        if len(frames) == config.batch and not flush():
                            return
            if flush():
                put(None)
        except BaseException as e:  # hand every failure to the consumer, which re-raises it
            put(e)

    producer = threading.Thread(target=produce, name="shiftaudit-render", daemon=True)
    producer.start()
    done_images = 0
    try:
        while True:
            item = batches.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            if should_stop and should_stop():
                raise Cancelled("audit cancelled")
            x, refs = item
            out = runner.infer(x)
            if result.output_kind is None:
                result.output_kind = pre.output if pre.output != "auto" else detect_output_kind(out)
            probs = probabilities(out, result.output_kind)
            result.frames += len(refs)
            for row, pending in zip(probs, refs):  # a unit's frames arrive in order
                pending.probs.append(row)
                if len(pending.probs) == len(pending.unit.frames):
                    done_images += _finish(pending, result)
            if progress:
                progress(Progress(done_images, total, result.frames, time.perf_counter() - start))
    finally:
        stop.set()
        producer.join()
    result.seconds = time.perf_counter() - start
    if not result.images:
        reasons = "; ".join(s["reason"] for s in result.skipped[:3])
        raise InputError("no usable image" + (f": {reasons}" if reasons else ""))
    return result


def _image_units(name: str, load: Callable[[], SourceImage], config: AuditConfig,
                 labels: dict[str, int] | None, skipped: list[dict]
                 ) -> tuple[SourceImage, list[Unit], dict] | None:
    """Decode one image and plan its units; failures are skipped and listed (raised when strict)."""
    def skip(reason: str, protocol: str | None = None) -> None:
        if config.strict:
            raise InputError(reason)
        skipped.append({"image": name, "protocol": protocol, "reason": reason})

    try:
        image = load()
    except ImageError as e:
        skip(str(e))
        return None
    units: list[Unit] = []
    for protocol in config.protocols:
        try:
            units += plan(protocol, image.size, image.digest, config.plan)
        except TooSmall as e:
            skip(f"{name}: {e}", protocol)
    if not units:
        return None
    label = label_for(name, labels) if labels else None
    return image, units, {"image": name, "sha256": image.digest, "size": list(image.size), "label": label,
                          "units": []}


def _finish(pending: _Pending, result: AuditResult) -> int:
    """Score a completed unit into the statistics and its image's record; 1 when the image is done."""
    unit, record = pending.unit, pending.record
    score = score_unit(np.stack(pending.probs))
    size = unit.param if unit.protocol == "size-sweep" else None
    result.stats[unit.protocol].add(score, size=size, label=record["label"])
    entry = {"protocol": unit.protocol, "index": unit.index, "top1": score.top1.tolist(),
             "p_top1": [round(float(p), 6) for p in score.p_star], "changes": int(score.changes.sum())}
    if unit.param is not None:
        entry["size"] = unit.param
    entry["placements"] = [[*f.dst] for f in unit.frames]
    record["units"].append(entry)
    record["_left"] -= 1
    if record["_left"]:
        return 0
    del record["_left"]
    result.images.append(record)
    return 1
