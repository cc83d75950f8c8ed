"""Render-ahead: frames are rendered into batches in a producer thread while the engine (which
releases the GIL) infers the batch before, at most ``depth`` finished batches waiting. Producer and
consumer both check for a cancel: the producer before every group of frames it takes (an image, before
it is decoded) and every batch it renders, the consumer before every batch, so a cancel stops the
rendering too. The pipeline knows frames and batches, not what they mean."""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from .errors import Cancelled
from .render import Batch, Frame

T = TypeVar("T")


def render_ahead(groups: Iterable[Iterable[tuple[Frame, T]]], size: int, render: Callable[[list[Frame]], Batch],
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
