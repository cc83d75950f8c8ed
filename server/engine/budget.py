"""What one audit may hold in memory, so that a request cannot take the node's memory: the engine's
batch (its activations grow with it) and the bytes of the audit's own frames and images. In process
the caller's machine is the caller's: no budget. A server sets one (``audit-server --help``).

The frames' bytes: up to IN_FLIGHT batches exist at once (two rendered and waiting, one rendering,
one in the engine), each frame in the engine's dtype, plus the float32 pixel-space canvases of the
batch being rendered. Decoded images waiting for their batch may take as much again: the render-ahead
pipeline renders a batch early rather than hold more (`pipeline.render_ahead`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .options import AuditOptions

if TYPE_CHECKING:
    from .runners.base import InputSpec

IN_FLIGHT = 4


class OverBudget(Exception):
    """A request over one of the server's limits; the message names the limit and what would fit by their
    field names (`ServerLimits`', `AuditOptions`'), never by a command line's flags: the caller of a server
    never typed the server's."""


def batch_bytes(options: AuditOptions, spec: InputSpec) -> int:
    """Bytes the frames of an audit's batches hold at once (options resolved: canvas and batch known)."""
    h, w = options.canvas
    return options.batch * 3 * h * w * (IN_FLIGHT * spec.dtype.itemsize + 4)


@dataclass(frozen=True)
class MemoryBudget:
    audit_bytes: int  # the audit's frames in flight, and as much again for decoded images
    max_batch: int

    @property
    def source_bytes(self) -> int:
        """Decoded images the render-ahead pipeline may hold for the batch it is filling."""
        return self.audit_bytes

    def check(self, options: AuditOptions, spec: InputSpec) -> None:
        """OverBudget for resolved options whose batches would not fit."""
        if options.batch > self.max_batch:
            raise OverBudget(f"batch {options.batch} is over this server's max_batch of {self.max_batch} frames per "
                             "engine call; ask for a smaller batch")
        need = batch_bytes(options, spec)
        if need > self.audit_bytes:
            fits = self.audit_bytes * options.batch // need
            h, w = options.canvas
            raise OverBudget(f"batches of {options.batch} frames of {h}x{w} need {need / 2**20:.0f} MiB, over this "
                             f"server's max_audit_memory_mb of {self.audit_bytes / 2**20:.0f} MiB per audit; "
                             + (f"ask for batch {fits} or less" if fits else "ask for a smaller canvas"))
