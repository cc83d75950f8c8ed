"""How far an audit is, in frames (an image's frames finish together, so counting images would sit at
0/6 until the first one is done): rich's bar with rate and time left on a terminal; in a log (stderr not
a terminal), a plain line every ``every`` seconds and a last one at the end."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from shiftaudit.server.engine.progress import Progress


class ProgressBar:
    def __init__(self, stream: TextIO = sys.stderr, every: float = 10.0) -> None:
        self.stream, self.every = stream, every
        self.latest: Progress | None = None
        self.printed = 0.0
        self.bar: RichProgress | None = None
        if stream.isatty():
            self.bar = RichProgress(TextColumn("audit"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
                                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("left"),
                                    TimeRemainingColumn(), console=Console(file=stream), transient=False)
            self.task = self.bar.add_task("audit", total=None, rate="")
            self.bar.start()

    def __call__(self, p: Progress) -> None:
        self.latest = p
        if self.bar:
            self.bar.update(self.task, completed=p.frames, total=p.frames_total, rate=f"{_rate(p):.1f} frames/s")
        elif time.monotonic() - self.printed >= self.every:
            self.printed = time.monotonic()
            self._line(p)

    def _line(self, p: Progress, last: bool = False) -> None:
        done = f"{p.frames}/{p.frames_total} frames ({100 * p.frames / p.frames_total:.0f} %)" if p.frames_total \
            else f"{p.frames} frames"
        left = (p.frames_total - p.frames) / _rate(p) if p.frames_total and _rate(p) else None
        images = f", {p.images_done}/{p.images_total or '?'} images"
        when = f" in {p.seconds:.1f} s" if last else (f", about {left:.0f} s left" if left is not None else "")
        self.stream.write(f"{'done: ' if last else ''}{done}{images}, {_rate(p):.1f} frames/s{when}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar:
            self.bar.stop()
        elif self.latest:
            self._line(self.latest, last=True)


def _rate(p: Progress) -> float:
    return p.frames / p.seconds if p.seconds else 0.0
