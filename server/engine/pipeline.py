"""The skeleton every run of frames through an engine shares (the audit, a layer profile, a Ray actor's
part): each image decoded and planned when its turn comes, an image or a protocol it cannot serve skipped
and listed (`plan_image`), its frames rendered ahead in batches (`render_ahead`), each batch handed to a
consumer with the progress after it (`stream`), and no usable image at all an error (`require_usable`).

Render-ahead: frames are rendered into batches in a producer thread while the engine (which releases the
GIL) infers the batch before, at most ``depth`` finished batches waiting. Producer and consumer both check
for a cancel: the producer before every group of frames it takes (an image, before it is decoded) and
every batch it renders, the consumer before every batch, so a cancel stops the rendering too. A group
may be a `Barrier`: what comes after it waits until the consumer has scored what came before (a choice
made on results, the same whatever the batch size)."""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Protocol, TypeVar

from .errors import Cancelled, InputError
from .images import ImageError, SourceImage
from .progress import Progress
from .protocols import TooSmall, Unit
from .render import Batch, Frame

T = TypeVar("T")
Skip = Callable[[str, str, "str | None"], None]  # (image, why, protocol or None: the whole image)


def plan_image(name: str, load: Callable[[], SourceImage], protocols: Iterable[str],
               plan: Callable[[str, SourceImage], list[Unit]], skip: Skip) -> tuple[SourceImage, list[Unit]] | None:
    """Decode one image and plan its units under each protocol; what it cannot serve is skipped (the whole
    image when it cannot be decoded, a protocol it is too small for); None when nothing is left."""
    try:
        image = load()
    except ImageError as e:  # its message names the image
        skip(name, str(e), None)
        return None
    units: list[Unit] = []
    for protocol in protocols:
        try:
            units += plan(protocol, image)
        except TooSmall as e:
            skip(name, f"{name}: {e}", protocol)
    return (image, units) if units else None


def require_usable(images: int, skipped: list[dict]) -> None:
    """An audit with no usable image is an error, not an empty report; it names why the first were skipped."""
    if not images:
        reasons = "; ".join(s["reason"] for s in skipped[:3])
        raise InputError("no usable image" + (f": {reasons}" if reasons else ""))


@dataclass(frozen=True)
class Barrier:
    """A group of no frames: the frames before it are rendered and handed over (a smaller batch), and the
    producer waits until ``released`` is set (the consumer has scored them), or the run stops."""

    released: threading.Event


class Consumer(Protocol[T]):
    """What a run does with each rendered batch, how far it is, and whether it has seen enough."""

    done: bool

    def take(self, batch: Batch, tags: list[T]) -> None: ...

    def progress(self, seconds: float) -> Progress: ...


def stream(groups: Iterable[Iterable[tuple[Frame, T]] | Barrier], size: int, render: Callable[[list[Frame]], Batch],
           consumer: Consumer[T], progress: Callable[[Progress], None] | None = None,
           should_stop: Callable[[], bool] | None = None, max_source_bytes: int | None = None) -> float:
    """Every batch of ``groups``' frames rendered ahead (`render_ahead`) and handed to ``consumer``, the
    progress reported after each, until the frames run out or the consumer is done (the planning that
    ran ahead is stopped); the seconds it took."""
    start = time.perf_counter()
    with closing(render_ahead(groups, size, render, should_stop, max_source_bytes=max_source_bytes)) as batches:
        for batch, tags in batches:
            consumer.take(batch, tags)
            if progress:
                progress(consumer.progress(time.perf_counter() - start))
            if consumer.done:
                break
    return time.perf_counter() - start


def render_ahead(groups: Iterable[Iterable[tuple[Frame, T]] | Barrier], size: int, render: Callable[[list[Frame]], Batch],
                 should_stop: Callable[[], bool] | None = None, depth: int = 2,
                 max_source_bytes: int | None = None) -> Iterator[tuple[Batch, list[T]]]:
    """(batch, the tags of its frames) for the frames of ``groups`` (lazy: a group's work, decoding its
    image, starts when it is taken) taken ``size`` at a time, or fewer when the decoded images a batch
    would wait for exceed ``max_source_bytes``; an error in the producer (planning, decoding,
    rendering) is raised here. Close the iterator (``contextlib.closing``) to stop the producer early;
    it is joined before the close returns."""
    if size < 1:
        raise ValueError(f"a batch needs at least one frame, not {size}")
    stop = threading.Event()
    batches: queue.Queue = queue.Queue(maxsize=depth)

    def put(item) -> None:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def halted() -> bool:
        if stop.is_set():
            return True
        if should_stop and should_stop():
            put(Cancelled("audit cancelled"))
            return True
        return False

    def flush(chunk: list[tuple[Frame, T]]) -> bool:
        if halted():
            return False
        put((render([frame for frame, _ in chunk]), [tag for _, tag in chunk]))
        return True

    def produce() -> None:
        try:
            chunk: list[tuple[Frame, T]] = []
            held: dict[int, int] = {}  # bytes of the decoded images the chunk's frames draw from
            for group in groups:
                if halted():
                    return
                if isinstance(group, Barrier):
                    if chunk and not flush(chunk):
                        return
                    chunk, held = [], {}
                    while not group.released.wait(0.05):
                        if halted():
                            return
                    continue
                for item in group:
                    image = item[0][0]
                    if (max_source_bytes is not None and chunk and id(image) not in held
                            and sum(held.values()) + image.pixels.nbytes > max_source_bytes):
                        if not flush(chunk):  # a smaller batch now rather than more images held
                            return
                        chunk, held = [], {}
                    chunk.append(item)
                    held[id(image)] = image.pixels.nbytes
                    if len(chunk) == size:
                        if not flush(chunk):
                            return
                        chunk, held = [], {}
            if not chunk or flush(chunk):
                put(None)
        except BaseException as e:  # hand every failure to the consumer, which raises it
            put(e)

    producer = threading.Thread(target=produce, name="shiftaudit-render", daemon=True)
    producer.start()
    try:
        while (item := batches.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            if should_stop and should_stop():
                raise Cancelled("audit cancelled")
            yield item
    finally:
        stop.set()
        producer.join()
