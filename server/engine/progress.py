"""How far an audit is: what the engine reports after each batch, the service streams, and the
client's progress bar shows (a module of its own so the light client needs nothing else)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    images_done: int
    images_total: int | None  # None: not known in advance
    frames: int
    seconds: float
    # time so far in each stage (rendering runs ahead, in its own thread: the stages overlap)
    render_seconds: float = 0.0
    infer_seconds: float = 0.0
    score_seconds: float = 0.0
    frames_total: int | None = None  # expected: exact once every image is planned; None: not known yet
