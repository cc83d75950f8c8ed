"""A progress bar on stderr: redrawn in place on a terminal, a line every few seconds in a log."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from shiftaudit.server.engine.progress import Progress


class ProgressBar:
    def __init__(self, stream: TextIO = sys.stderr, every: float = 5.0) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.every = every
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if not self.tty and now - self.last < self.every:
            return
        self.last = now
        rate = p.frames / p.seconds if p.seconds else 0.0
        if p.images_total:
            frac = p.images_done / p.images_total
            bar = "#" * int(30 * frac)
            eta = p.seconds * (1 - frac) / frac if frac else 0.0
            text = f"[{bar:<30}] {p.images_done}/{p.images_total} images, {p.frames} frames, " \
                   f"{rate:.1f} frames/s, ETA {eta:.0f} s"
        else:
            text = f"{p.images_done} images, {p.frames} frames, {rate:.1f} frames/s"
        self.stream.write(("\r" + text + "\033[K") if self.tty else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()
