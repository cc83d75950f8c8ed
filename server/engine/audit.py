"""The audit: images -> plan -> render (ahead of inference, `pipeline.py`) -> infer -> score ->
metrics (DESIGN.md §2), judged by one engine or several on the very frames.

A unit's frames may straddle batches: its probabilities are collected until its last frame is back,
then it is scored into the statistics and its image's record; an image's record is complete when its
last unit is scored.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from .budget import ImageMemory
from .errors import Cancelled, InputError
from .images import ImageSource, SourceImage
from .labels import Labels
from .metrics import RECORD_DECIMALS, ProtocolStats
from .options import AuditOptions
from .pipeline import Barrier, plan_image, require_usable, stream
from .precision import PILOT_IMAGES, PILOT_PAIRS, Choice, choose, halfwidth
from .preprocessing import Preprocessing
from .progress import Progress
from .protocols import REGISTRY, Unit, plan
from .render import Batch, Frame, HostBatch, Renderer
from .render.cpu import CpuRenderer
from .result import AuditResult, Target, put_in_order
from .runners import Runner
from .score import detect_output_kind, probabilities, score_unit


@dataclass(frozen=True)
class Start:
    """What an interrupted run of an audit finished (its partial report's result), which a resumed run
    continues on the sources left: ``sources_done`` of the audit's sources were finished (audited or
    skipped whole); ``order``: every source's name -> its place, the order the records are listed in."""

    result: AuditResult
    sources_done: int
    order: dict[str, int]


@dataclass
class _Image:
    """An image whose units are in flight: its record, and how many of its units are still unscored."""

    record: dict
    left: int
    twins: dict = field(default_factory=dict)  # Audit -> the same image in that engine's audit (`Audit.mirror`)
    stats: dict[str, ProtocolStats] = field(default_factory=dict)  # this image's own, folded in when it is done


@dataclass
class _Unit:
    """A unit in flight: its frames' probabilities arrive batch by batch."""

    unit: Unit
    image: _Image
    probs: list = field(default_factory=list)
    twins: dict = field(default_factory=dict)  # Audit -> the same unit in that engine's audit


class Audit:
    """One audit's state: the images it planned or skipped, the units in flight, the statistics."""

    def __init__(self, options: AuditOptions, output: str = "auto", labels: Labels | None = None,
                 per_image: bool = False, names: list[str] | None = None, listed: int | None = None,
                 memory: ImageMemory | None = None, start: Start | None = None) -> None:
        """``per_image``: keep each image's statistics too (`AuditResult.image_stats`), so that a merge can
        take an image once however often a retried task returns it (`scale_out`); ``names``: the model's
        class names, written beside each frame's top-1 class in the records; ``listed``: the images there
        are, if known (what a choice of pairs per image may count on); ``start``: what an interrupted run of
        this audit finished, which this one continues."""
        self.options, self.output, self.labels, self.per_image, self.names = options, output, labels, per_image, names
        self.listed = listed
        self.memory = memory  # what one image may take (a server's budget): each is checked before it is decoded
        self.result = AuditResult.empty(options.protocols) if start is None else start.result
        self.images_done = len(self.result.images)
        self.offset = start.sources_done if start else 0  # the sources the interrupted run finished
        self.images_planned = self.frames_planned = 0  # planning runs ahead of inference
        self.positions: dict[str, int] = {}  # image name -> its place among the sources
        self.enough = False  # the target half-width is reached: nothing after this image counts
        self.stop_at: int | None = None  # the place of the image that reached it
        # --choose-pairs: the pilot's images are planned at `planning`'s pairs, the rest at the choice's
        self.planning = replace(options, pairs_per_image=max(options.pairs_per_image, PILOT_PAIRS)) \
            if options.choose_pairs else options
        self.choice: Choice | None = None
        self.pilot_done = threading.Event()
        if self.result.target and self.result.target.choices:  # chosen before the interruption
            self._chosen(Choice.from_json(self.result.target.choices[0]))
        self.in_flight = 0  # images planned and not yet scored (the producer plans, the consumer scores)
        self.at_pilot_end = False
        self.lock = threading.Lock()

    def frames_expected(self, images_total: int | None) -> int | None:
        """The frames the audit will infer: those planned, and as many again per image left as the
        images planned so far had (skipped ones count with none)."""
        if not images_total or not self.images_planned:
            return None
        left = images_total - self.images_planned
        return self.frames_planned + round(self.frames_planned / self.images_planned * left)

    def frames(self, sources: Iterable[ImageSource]) -> Iterator[Iterator[tuple[Frame, _Unit]] | Barrier]:
        """Per image, its frames to render with their units; nothing is decoded before they are asked for.
        With --choose-pairs, a `Barrier` after the pilot's images: the rest are planned at the pairs chosen
        from the pilot's scores."""
        for at, (name, load) in enumerate(sources, self.offset):
            if at == PILOT_IMAGES and self.options.choose_pairs and not self.pilot_done.is_set():
                with self.lock:
                    self.at_pilot_end = True
                    if not self.in_flight:
                        self._choose()
                yield Barrier(self.pilot_done)
            yield self._image_frames(name, load)

    def _choose(self) -> None:
        """The pairs per image for the images after the pilot (`precision.choose`); called with the lock
        held, once, when the pilot's last image is scored."""
        self._chosen(choose(self.result.stats, self.images_done, self.planning.pairs_per_image, self.result.frames,
                            self.options.target_halfwidth, self.listed))

    def _chosen(self, choice: Choice) -> None:
        self.choice = choice
        self.planning = replace(self.options, pairs_per_image=choice.pairs)
        self.pilot_done.set()

    def _image_frames(self, name: str, load: Callable[[], SourceImage]) -> Iterator[tuple[Frame, _Unit]]:
        self.positions[name] = self.images_planned
        planned = self._plan(name, load)
        self.images_planned += 1
        if planned is None:
            return
        image, units, record = planned
        self.frames_planned += sum(len(unit.frames) for unit in units)
        entry = _Image(record, len(units))
        with self.lock:
            self.in_flight += 1
        for unit in units:
            pending = _Unit(unit, entry)
            for placement in unit.frames:
                yield (image, placement), pending

    def mirror(self, units: list[_Unit]) -> list[_Unit]:
        """This audit's units for a batch that another audit planned (with the same options and sources,
        so the same frames) and rendered: another engine judged on the very frames, each unit scored in
        this audit's own records. Called before the other audit scores the batch, so an image's units
        are all still unscored when its first one is seen."""
        mirrored = []
        for u in units:
            if self not in u.twins:
                image = u.image
                if self not in image.twins:
                    image.twins[self] = _Image({**image.record, "units": []}, image.left)
                u.twins[self] = _Unit(u.unit, image.twins[self])
            mirrored.append(u.twins[self])
        return mirrored

    def _skip(self, name: str, reason: str, protocol: str | None) -> None:
        """An unusable image (or protocol of an image) is skipped and listed, or stops a strict audit."""
        if self.options.strict:
            raise InputError(reason)
        self.result.skipped.append({"image": name, "protocol": protocol, "reason": reason})

    def _plan(self, name: str, load: Callable[[], SourceImage]) -> tuple[SourceImage, list[Unit], dict] | None:
        """Decode one image and plan its units under every protocol."""
        options = self.planning
        planned = plan_image(name, partial(load, memory=self.memory) if self.memory else load, options.protocols,
                             lambda protocol, image: plan(protocol, image.size, image.digest, options), self._skip)
        if planned is None:
            return None
        image, units = planned
        label = self.labels.label_for(name) if self.labels else None
        return image, units, {"image": name, "sha256": image.digest, "size": list(image.size), "label": label,
                              "units": []}

    def score(self, out: np.ndarray, units: list[_Unit]) -> None:
        """The engine's outputs for one batch (a row per frame, in order)."""
        if self.result.output_kind is None:
            self.result.classes = out.shape[1]
            self.result.output_kind = self.output if self.output != "auto" else detect_output_kind(out)
        for row, pending in zip(probabilities(out, self.result.output_kind), units):  # a unit's frames in order
            if self.enough:  # frames of images after the one that reached the target: not this audit's
                break
            self.result.frames += 1
            pending.probs.append(row)
            if len(pending.probs) == len(pending.unit.frames):
                self._finish(pending)

    def _finish(self, pending: _Unit) -> None:
        """Score a completed unit into the statistics and its image's record."""
        unit, image = pending.unit, pending.image
        score = score_unit(np.stack(pending.probs))
        size = unit.param if REGISTRY[unit.protocol].by_size else None
        image.stats.setdefault(unit.protocol, ProtocolStats(REGISTRY[unit.protocol].kind)).add(
            score, size=size, label=image.record["label"])
        entry = {"protocol": unit.protocol, "index": unit.index, "top1": score.top1.tolist(),
                 "p_top1": [round(float(p), RECORD_DECIMALS) for p in score.p_star], "changes": int(score.changes.sum())}
        if unit.param is not None:
            entry["size"] = unit.param
        entry["placements"] = [[*f.dst] for f in unit.frames]
        if self.names:
            entry["top1_names"] = [self.names[c] if c < len(self.names) else str(c) for c in entry["top1"]]
        image.record["units"].append(entry)
        image.left -= 1
        if not image.left:  # the image enters the statistics whole: its pairs are one cluster
            folded = {protocol: stats.as_image() for protocol, stats in image.stats.items()}
            for protocol, stats in folded.items():
                self.result.stats[protocol].merge(stats)
            self.result.images.append(image.record)
            if self.per_image:
                self.result.image_stats.append(folded)
            self.images_done += 1
            if self.options.target_halfwidth is not None and self.precise():
                self.enough, self.stop_at = True, self.positions[image.record["image"]]
            with self.lock:
                self.in_flight -= 1
                if self.at_pilot_end and not self.in_flight and not self.pilot_done.is_set():
                    self._choose()

    def precise(self) -> bool:
        """Whether every protocol's 95 % interval of P(top-1 change) lies within the target half-width of
        its value (`AuditOptions.target_halfwidth`)."""
        for stats in self.result.stats.values():
            width = halfwidth(stats.overall.p_top1_change())
            if width is None or width > self.options.target_halfwidth:
                return False
        return True

    def finish_target(self, listed: int | None) -> None:
        """The target's outcome in the result (``listed``: the images there were); skips of images planned
        after the one that reached it (the planning runs ahead) are not this audit's."""
        if self.options.target_halfwidth is None:
            return
        if self.enough:  # (a resumed audit's earlier skips have no place here: they came before)
            self.result.skipped = [s for s in self.result.skipped if self.positions.get(s["image"], -1) <= self.stop_at]
        self.result.target = Target(self.options.target_halfwidth, self.enough, self.images_done, listed,
                                    [self.choice.to_json()] if self.choice else [])


@dataclass(frozen=True)
class Judge:
    """One engine of an audit: its runner, the preprocessing its frames get, its class names (if known)."""

    runner: Runner
    pre: Preprocessing
    names: list[str] | None = None


def run_audit(runner: Runner, sources: Sequence[ImageSource] | Iterable[ImageSource], pre: Preprocessing,
              options: AuditOptions, labels: Labels | None = None,
              progress: Callable[[Progress], None] | None = None,
              should_stop: Callable[[], bool] | None = None, renderer: Renderer | None = None,
              memory: ImageMemory | None = None) -> AuditResult:
    """Audit ``runner`` on ``sources`` under every protocol of ``options`` (resolved against the runner's
    model); ``renderer`` makes the engine's input batches (the CPU renderer by default, or the kernels);
    ``memory`` bounds the decoded images held for a batch (`pipeline.render_ahead`) and each image."""
    return run_judged([Judge(runner, pre)], sources, options, labels, progress, should_stop, renderer,
                      memory)[0]


class _Judging:
    """One audit judged by several engines (`run_judged`): the renderings the engines share, their
    audits, the time in each stage (an operator's metrics). The pipeline's consumer (`pipeline.stream`)."""

    def __init__(self, judges: Sequence[Judge], options: AuditOptions, labels: Labels | None, renderer: Renderer,
                 per_image: bool, total: int | None, memory: ImageMemory | None, start: Start | None) -> None:
        self.judges, self.renderer, self.total = judges, renderer, total
        self.audits = [Audit(options, judge.pre.output, labels, per_image, judge.names, total, memory, start)
                       for judge in judges]
        self.lead = self.audits[0]
        self.inputs: list[int] = []  # per judge, the index of the rendering it reads
        self.kinds: list[tuple] = []  # renderings are shared where inputs agree: (kind, (judge, norm, spec))
        for judge in judges:
            spec, norm = judge.runner.input_spec(), judge.pre.normalisation()
            kind = (norm.scale.tobytes(), norm.bias.tobytes(), norm.channel_order, spec.layout, str(spec.dtype))
            if kind not in [k for k, _ in self.kinds]:
                self.kinds.append((kind, (judge, norm, spec)))
            self.inputs.append([k for k, _ in self.kinds].index(kind))
        self.stages = {"render": 0.0, "infer": 0.0, "score": 0.0}  # seconds in each

    @property
    def done(self) -> bool:
        return self.lead.enough  # the target is reached: the planning that ran ahead is stopped

    def render(self, frames: list[Frame]) -> list[Batch]:
        """A batch the engine will not read where it lies is copied to the host here, in the producer,
        so the copy overlaps inference too."""
        begin = time.perf_counter()
        batches = []
        for _, (judge, norm, spec) in self.kinds:
            batch = self.renderer.render(frames, norm, spec.layout, spec.dtype)
            batches.append(batch if judge.runner.reads_in_place(batch) else HostBatch(batch.to_host()))
        self.stages["render"] += time.perf_counter() - begin
        return batches

    def take(self, rendered: list[Batch], units: list[_Unit]) -> None:
        mirrored = [units] + [audit.mirror(units) for audit in self.audits[1:]]
        for judge, audit, which, mine in zip(self.judges, self.audits, self.inputs, mirrored):
            begin = time.perf_counter()
            out = judge.runner.infer(rendered[which])
            scored = time.perf_counter()
            audit.score(out, mine)
            self.stages["infer"] += scored - begin
            self.stages["score"] += time.perf_counter() - scored

    def progress(self, seconds: float) -> Progress:
        lead = self.lead
        return Progress(lead.images_done, self.total, lead.result.frames, seconds, *self.stages.values(),
                        frames_total=lead.frames_expected(self.total))

    def results(self, seconds: float, left: list[str] | None) -> list[AuditResult]:
        """Each engine's result; ``left``: the sources not finished when the audit was interrupted (None:
        it was not), whose frames and skips the results then leave out, as if they had not been planned."""
        self.lead.finish_target(self.total)
        skipped = self.lead.result.skipped
        if left is not None:
            unfinished = set(left)
            skipped = [s for s in skipped if s["image"] not in unfinished]
        for audit in self.audits:
            result = audit.result
            result.seconds += seconds  # a resumed audit's: its time before the interruption too
            result.skipped = list(skipped)  # planned once: the same skips for every engine
            if left is not None:
                result.left = left
                result.frames = sum(len(u["placements"]) for r in result.images for u in r["units"])
        return [audit.result for audit in self.audits]

    def left(self, sources: Sequence[ImageSource]) -> list[str]:
        """The sources an interrupted audit did not finish: neither audited (their units all scored) nor
        skipped whole."""
        done = {r["image"] for r in self.lead.result.images} | {s["image"] for s in self.lead.result.skipped
                                                                 if s["protocol"] is None}
        return [name for name, _ in sources if name not in done]


def run_judged(judges: Sequence[Judge], sources: Sequence[ImageSource] | Iterable[ImageSource],
               options: AuditOptions, labels: Labels | None = None,
               progress: Callable[[Progress], None] | None = None,
               should_stop: Callable[[], bool] | None = None, renderer: Renderer | None = None,
               memory: ImageMemory | None = None, part: bool = False, per_image: bool = False,
               start: Start | None = None) -> list[AuditResult]:
    """One audit judged by several engines on the very frames: each image is decoded and planned once,
    each batch rendered once for every engine that takes the same input (normalisation, layout, dtype),
    and each engine's outputs scored into a result of its own (`audit-client compare`). An audit with no
    usable image is an error, unless it is a ``part`` of one (a shard may hold none); ``per_image`` keeps
    each image's statistics too.

    Stopped by ``should_stop`` (Ctrl-C, CancelAudit), the audit is interrupted, not failed: the results
    hold the images finished, and their ``left`` the sources that were not (a partial report; ``start``
    continues one: one engine's, on the sources it left)."""
    if options.canvas is None or options.batch is None:
        raise ValueError("the options have no canvas or batch yet: resolve them against the model first "
                         "(AuditOptions.resolved)")
    if options.target_halfwidth is not None and len(judges) > 1:
        raise InputError("a comparison audits every image: it takes no target half-width")
    if start is not None and (len(judges) > 1 or per_image):
        raise ValueError("a resumed audit is one engine's")
    total = len(sources) + (start.sources_done if start else 0) if isinstance(sources, Sequence) else None
    judging = _Judging(judges, options, labels, renderer or CpuRenderer(), per_image, total, memory, start)
    began, left = time.perf_counter(), None
    try:
        seconds = stream(judging.lead.frames(sources), options.batch, judging.render, judging, progress, should_stop,
                         memory.held if memory else None)
    except Cancelled:
        if not isinstance(sources, Sequence):  # what is left cannot be said: nothing to resume
            raise
        seconds, left = time.perf_counter() - began, judging.left(sources)
    results = judging.results(seconds, left)
    if start is not None:
        for result in results:
            put_in_order(result, start.order, options.protocols)
    if not part and left is None:
        require_usable(len(results[0].images), results[0].skipped)
    return results
