"""What one audit may hold in memory, so that a request cannot take the node's memory: an upper bound
on everything it holds, checked before it starts. In process the caller's machine is the caller's: no
budget. A server sets one (``audit-server --help``).

What an audit holds, and how each part is bounded:
- its frames: up to IN_FLIGHT batches at once (two rendered and waiting, one rendering, one in the
  engine), each frame in the engine's dtype, plus the float32 pixel-space blocks of the batch being
  rendered and their normalised copies (`batch_bytes`);
- the engine's activations for one call (`Runner.activation_bytes`: ONNX's shape inference at the
  call's shape for ONNX Runtime on the CPU, with a margin measured on it; nothing on the host for an
  engine that runs on a GPU);
- its images, in what is left: half for the decoded images a batch waits for (the render-ahead pipeline
  renders a batch early rather than hold more: `pipeline.render_ahead`), half for the one image being
  decoded or rendered now. An image's need is known from its header before it is decoded (`image_bytes`):
  one that would not fit is skipped, with the reason, and the rest of the audit goes on.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .options import AuditOptions

if TYPE_CHECKING:
    from .runners.base import InputSpec, Runner

IN_FLIGHT = 4
ROWS = 256  # rows of an image converted to 8-bit RGB at a time (`images._to_rgb8`)


class OverBudget(Exception):
    """A request over one of the server's limits; the message names the limit and what would fit by their
    field names (`ServerLimits`', `AuditOptions`'), never by a command line's flags: the caller of a server
    never typed the server's."""


def batch_bytes(options: AuditOptions, spec: InputSpec) -> int:
    """Bytes the frames of an audit's batches hold at once (options resolved: canvas and batch known):
    the batches in flight, and the batch being rendered's float32 blocks and normalised copies."""
    h, w = options.canvas
    return options.batch * 3 * h * w * (IN_FLIGHT * spec.dtype.itemsize + 4 + 4 + 4)


def image_bytes(w: int, h: int, pixel_bytes: int, encoded: int, canvas: tuple[int, int]) -> int:
    """The most one image takes at a time: while it is decoded (its file's bytes, OpenCV's decoded array
    at its own depth and channels, the 8-bit RGB result and the rows converted at a time), or while a
    frame is resampled from it onto the canvas (the RGB image, the band of it a window touches, copied
    transposed, and the separable passes' float32 buffers: columns first over the window's rows, then
    rows: `kernels.reference.resample`)."""
    rgb = w * h * 3
    decoding = encoded + w * h * pixel_bytes + rgb + ROWS * w * 16
    ch, cw = canvas
    resampling = 2 * rgb + 3 * cw * h * 3 * 4 + 2 * ch * cw * 3 * 4
    return max(decoding, resampling)


@dataclass(frozen=True)
class ImageMemory:
    """What an audit's images may take: ``held`` for the decoded images a batch waits for, ``each`` for the
    one decoded or rendered now (`image_bytes`), on a ``canvas`` (h, w)."""

    held: int
    each: int
    canvas: tuple[int, int]

    def refuses(self, name: str, w: int, h: int, pixel_bytes: int, encoded: int) -> str | None:
        """Why the image cannot be audited within ``each`` (the audit skips it), or None when it fits."""
        need = image_bytes(w, h, pixel_bytes, encoded, self.canvas)
        if need <= self.each:
            return None
        return (f"{name}: {w}x{h} at {pixel_bytes} bytes a pixel needs {need / 2**20:.0f} MiB to decode and render, "
                f"over the {self.each / 2**20:.0f} MiB an image may take within this server's max_audit_memory_mb; "
                "ask for a smaller batch or canvas, or downscale it")


@dataclass(frozen=True)
class MemoryBudget:
    audit_bytes: int  # everything one audit holds: frames, the engine's activations, its images
    max_batch: int

    def check(self, options: AuditOptions, runner: Runner) -> ImageMemory:
        """What the audit's images may take, for resolved options; OverBudget when the batch, or the frames
        and the engine's activations, leave no room for an image the size of the canvas."""
        if options.batch > self.max_batch:
            raise OverBudget(f"batch {options.batch} is over this server's max_batch of {self.max_batch} frames per "
                             "engine call; ask for a smaller batch")
        frames, engine, least = self._needs(options, runner, options.batch)
        left = self.audit_bytes - frames - engine
        if left >= least:
            return ImageMemory(left // 2, left - left // 2, options.canvas)
        fits = self._most_batch(options, runner)
        h, w = options.canvas
        raise OverBudget(f"batches of {options.batch} frames of {h}x{w} need {frames / 2**20:.0f} MiB and the model's "
                         f"activations about {engine / 2**20:.0f} MiB, leaving less than the {least / 2**20:.0f} MiB "
                         f"its images need within this server's max_audit_memory_mb of "
                         f"{self.audit_bytes / 2**20:.0f} MiB per audit; "
                         + (f"ask for batch {fits} or less" if fits else "ask for a smaller canvas"))

    def _needs(self, options: AuditOptions, runner: Runner, batch: int) -> tuple[int, int, int]:
        """Bytes of the frames and of the engine's activations at ``batch``, and the least its images need
        (one the size of the canvas held, and one being rendered)."""
        h, w = options.canvas
        spec = runner.input_spec()
        frames = batch_bytes(replace(options, batch=batch), spec)
        return frames, runner.activation_bytes(_call_batch(batch, spec), (h, w)), 2 * image_bytes(w, h, 4, 0, (h, w))

    def _most_batch(self, options: AuditOptions, runner: Runner) -> int:
        """The largest batch under the asked one that fits (0: none; bisected: the activations are not linear)."""
        lo, hi = 0, options.batch - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            frames, engine, least = self._needs(options, runner, mid)
            lo, hi = (mid, hi) if self.audit_bytes - frames - engine >= least else (lo, mid - 1)
        return lo


def _call_batch(batch: int, spec: InputSpec) -> int:
    """Frames of one engine call: the engine's own batch when it has one, else the audit's (capped)."""
    _, most = spec.batch_range()
    return spec.batch if spec.batch else min(batch, most) if most else batch
