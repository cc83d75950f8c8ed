"""One typed launcher per kernel: the argument list of each is built here and only here, from
addresses (``memory.address(buffer)``) and plain values, for a launcher of either kind (`launch.py`)."""
from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence

from .launch import Arg
from .tables import Normalisation

P, I, F = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
Launcher = Callable[[str, Sequence[Arg], int, int], None]  # (kernel, arguments, elements per frame, frames)


def _output(norm: Normalisation, nchw: bool, half: bool) -> list[Arg]:
    """How a pixel-space value becomes the engine's input: scale, bias, channel order, layout, dtype."""
    return [*((F, float(s)) for s in norm.scale), *((F, float(b)) for b in norm.bias), (I, int(norm.bgr)),
            (I, int(nchw)), (I, int(half))]


def render(launch: Launcher, taps: int, frames: int, n: int, canvas: tuple[int, int], norm: Normalisation,
           nchw: bool, half: bool, out: int) -> None:
    """``n`` frames (packed ``frames`` rows over the ``taps`` array) into the engine's input at ``out``."""
    h, w = canvas
    launch("render", [(P, taps), (P, frames), (I, n), (I, h), (I, w), *_output(norm, nchw, half), (P, out)],
           h * w, n)


def render_canvas(launch: Launcher, taps: int, frames: int, n: int, canvas: tuple[int, int], pixels: int,
                  known: int) -> None:
    """``n`` frames as pixel-space canvases (n, H, W, 3) float32 and their known-pixel masks (n, H, W) bytes."""
    h, w = canvas
    launch("render_canvas", [(P, taps), (P, frames), (I, n), (I, h), (I, w), (P, pixels), (P, known)], h * w, n)


def inpaint_pass(launch: Launcher, pixels: int, known: int, pixels_out: int, known_out: int, n: int,
                 canvas: tuple[int, int], kernel: int, kernel_taps: int) -> None:
    """One normalised-convolution pass over ``n`` canvases, from one buffer pair into the other."""
    h, w = canvas
    launch("inpaint_pass", [(P, pixels), (P, known), (P, pixels_out), (P, known_out), (I, n), (I, h), (I, w),
                            (P, kernel), (I, kernel_taps)], h * w, n)


def normalise(launch: Launcher, pixels: int, slots: int, n: int, canvas: tuple[int, int], norm: Normalisation,
              nchw: bool, half: bool, out: int) -> None:
    """``n`` pixel-space canvases into frames ``slots[i]`` of the engine's input at ``out``."""
    h, w = canvas
    launch("normalise", [(P, pixels), (P, slots), (I, n), (I, h), (I, w), *_output(norm, nchw, half), (P, out)],
           h * w, n)


def resample(launch: Launcher, blocks: int, n: int, band: int, rows: int) -> None:
    """``n`` blocks (rows of render.cu's B_* fields at ``blocks``) resampled in two passes, columns then rows;
    ``band`` and ``rows``: the largest band's pixels and block's rows (a GPU's grid)."""
    launch("resample_columns", [(P, blocks), (I, n)], band, n)
    launch("resample_rows", [(P, blocks), (I, n)], rows, n)


def place(launch: Launcher, frames: int, n: int, canvas: tuple[int, int], norm: Normalisation, nchw: bool,
          half: bool, out: int) -> None:
    """``n`` frames (rows of render.cu's P_* fields: a block and where it lands) into the engine's input."""
    h, w = canvas
    launch("place", [(P, frames), (I, n), (I, h), (I, w), *_output(norm, nchw, half), (P, out)], h, n)  # rows


def inpaint_ring(launch: Launcher, frames: int, n: int, canvas: tuple[int, int], kernel: int, kernel_taps: int,
                 step: int) -> None:
    """Pass ``step`` of inpainting ``n`` canvases whose known pixels are a rectangle (inpaint.cu's R_* rows)."""
    h, w = canvas
    launch("inpaint_ring", [(P, frames), (I, n), (I, h), (I, w), (P, kernel), (I, kernel_taps), (I, step)], h * w, n)


def score(launch: Launcher, out: int, n: int, classes: int, logits: bool, cls: int, top1: int, rowmax: int,
          denom: int, p_star: int) -> None:
    """Per row of the (n, classes) float32 output: top-1 class, then p[c*] (c* from ``cls``, score.cu)."""
    launch("score_rows", [(P, out), (I, n), (I, classes), (I, int(logits)), (P, top1), (P, rowmax), (P, denom)],
           n, 1)
    launch("score_pstar", [(P, out), (I, n), (I, classes), (I, int(logits)), (P, cls), (P, top1), (P, rowmax),
                           (P, denom), (P, p_star)], n, 1)
