"""The paper's protocols (§2, DESIGN.md §1) and the sequence sweeps, as placements.

A protocol turns one source image into *units*: pairs of frames (or sequences) that differ by a
one-pixel translation or rescaling. This is the only place anything random is drawn, and the draw
depends only on the seed, the protocol and the image's content hash, never on file order,
batching or sharding.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import InputError
from .geometry import Placement, resolve_filter

if TYPE_CHECKING:
    import numpy as np

    from .options import AuditOptions

MAX_PAIRS_PER_IMAGE = 10_000  # bounds what one request can ask a server to plan and hold
MAX_SWEEP_FRAMES = 257


class TooSmall(InputError):
    """The image cannot be used by this protocol at the requested size (it would be upscaled)."""


@dataclass(frozen=True)
class Unit:
    """Frames compared with each other: a pair, or a sequence (consecutive frames compared)."""

    protocol: str
    index: int
    frames: tuple[Placement, ...]
    param: int | None = None  # the embedded size, for protocols stratified by it


def rng_for(seed: int, protocol: str, digest: str) -> np.random.Generator:
    """The one generator of an (image, protocol): seeded by the seed and the image's content hash."""
    import numpy as np  # not at the top: the option groups import the protocols' names (docs/decisions.md, "Start-up")

    words = [int(digest[i:i + 8], 16) for i in range(0, len(digest), 8)]
    return np.random.default_rng([seed, zlib.crc32(protocol.encode()), *words])


def plan(protocol: str, image_wh: tuple[int, int], digest: str, cfg: AuditOptions) -> list[Unit]:
    """The units of one image under one protocol, for options resolved against the model (a canvas)."""
    if cfg.canvas is None:
        raise ValueError("the options have no canvas yet: resolve them against the model first")
    rng = rng_for(cfg.seed, protocol, digest)
    return REGISTRY[protocol].build(image_wh, rng, cfg)


def embedded_size(image_wh: tuple[int, int], short: int) -> tuple[int, int]:
    """(w, h) of the image resized so its short side is ``short``, aspect kept."""
    w, h = image_wh
    m = min(w, h)
    if m < short:
        raise TooSmall(f"image {w}x{h} is smaller than the embedded size {short} (it would be upscaled)")
    return max(1, round(w * short / m)), max(1, round(h * short / m))


def _fit(image_wh: tuple[int, int], short: int, room: tuple[int, int]) -> tuple[int, int]:
    """Embedded (w, h), shrunk further (aspect kept) when the long side would not fit in ``room``."""
    w, h = embedded_size(image_wh, short)
    if w <= room[0] and h <= room[1]:
        return w, h
    f = min(room[0] / w, room[1] / h)
    return max(1, math.floor(w * f)), max(1, math.floor(h * f))


def _origin(rng: np.random.Generator, size: int, extent: float, canvas: int) -> int:
    """A uniform whole-pixel origin keeping [origin + min(0, extent), origin + size + max(0, extent))
    inside the canvas: every frame of the unit stays fully on it."""
    lo = math.ceil(max(0.0, -extent))
    hi = math.floor(canvas - size - max(0.0, extent))
    if hi < lo:
        raise TooSmall(f"embedded image of {size} px plus a move of {extent} px does not fit the canvas")
    return int(rng.integers(lo, hi + 1))


def _embed(image_wh, cfg: AuditOptions, rng, short: int, reach: tuple[float, float], fill: str,
           grow: int = 0) -> Placement:
    """Frame A of an embedding: the image resized to short side ``short`` at a random origin such that
    moving it by ``reach``, or growing it to short side ``short + grow``, keeps it on the canvas."""
    H, W = cfg.canvas
    room = (W - math.ceil(abs(reach[0])), H - math.ceil(abs(reach[1])))
    if grow:
        bw, bh = embedded_size(image_wh, short + grow)
        if bw > W or bh > H:
            raise TooSmall(f"image {image_wh[0]}x{image_wh[1]} at short side {short + grow} does not fit "
                           f"the {H}x{W} canvas")
        w, h = embedded_size(image_wh, short)
    else:
        bw, bh = w, h = _fit(image_wh, short, room)
    x = _origin(rng, bw, reach[0], W)
    y = _origin(rng, bh, reach[1], H)
    iw, ih = image_wh
    filt = resolve_filter(cfg.filter, (iw, ih), (w, h))
    return Placement((0, 0, iw, ih), (x, y, w, h), cfg.canvas, filt, fill)


def _crop_window(image_wh, rng) -> tuple[int, int, int, int]:
    """Inception-style random crop (Szegedy et al. 2015, as torchvision's RandomResizedCrop):
    area 8-100 %, aspect 3/4-4/3 log-uniform; centre crop after 10 failed draws."""
    W, H = image_wh
    area = W * H
    for _ in range(10):
        target = area * rng.uniform(0.08, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= W and 0 < h <= H:
            return int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1)), w, h
    ratio = W / H  # the whole image, its aspect clamped to 3/4..4/3
    w, h = (round(H * 4 / 3), H) if ratio > 4 / 3 else (W, round(W * 4 / 3)) if ratio < 3 / 4 else (W, H)
    return (W - w) // 2, (H - h) // 2, w, h


def _crop_frame(image_wh, rng, cfg: AuditOptions, reach: int = 1) -> Placement:
    """Frame A of a crop: the crop resampled to (H+reach|dy|) x (W+reach|dx|), so that the canvas can
    window it at A moved by -k·shift for every k up to ``reach``."""
    H, W = cfg.canvas
    dx, dy = cfg.shift
    src = _crop_window(image_wh, rng)
    size = (W + abs(dx) * reach, H + abs(dy) * reach)
    filt = resolve_filter(cfg.filter, src[2:], size)
    return Placement(src, (-max(0, -dx) * reach, -max(0, -dy) * reach, *size), cfg.canvas, filt)


def _crop_pair(image_wh, rng, cfg: AuditOptions) -> tuple[Placement, Placement]:
    """The canvas windows the resampled crop at a and at a + shift (the picture moves by -shift)."""
    a = _crop_frame(image_wh, rng, cfg)
    return a, a.moved(-cfg.shift[0], -cfg.shift[1])


def _crop(image_wh, rng, cfg):
    return [Unit("crop", i, _crop_pair(image_wh, rng, cfg)) for i in range(cfg.pairs_per_image)]


def _null(image_wh, rng, cfg):
    return [Unit("null", i, (a, a)) for i in range(cfg.pairs_per_image)
            for a in [_crop_pair(image_wh, rng, cfg)[0]]]


def _embed_shift(fill: str, name: str) -> Callable:
    def build(image_wh, rng, cfg):
        units = []
        for i in range(cfg.pairs_per_image):
            a = _embed(image_wh, cfg, rng, cfg.size, cfg.shift, fill)
            units.append(Unit(name, i, (a, a.moved(*cfg.shift)), param=cfg.size))
        return units
    return build


def _grown(a: Placement, image_wh, short: int) -> Placement:
    w, h = embedded_size(image_wh, short)
    return a.resized(w, h)


def _scale(image_wh, rng, cfg):
    units = []
    for i in range(cfg.pairs_per_image):
        a = _embed(image_wh, cfg, rng, cfg.size, (0, 0), "black", grow=1)
        units.append(Unit("scale", i, (a, _grown(a, image_wh, cfg.size + 1)), param=cfg.size))
    return units


def _translate_sweep(image_wh, rng, cfg):
    k, step = cfg.sweep_pixels, cfg.sweep_step
    n = int(round(k / step))
    dx, dy = cfg.shift
    units = []
    for i in range(cfg.pairs_per_image):
        a = _embed(image_wh, cfg, rng, cfg.size, (dx * k, dy * k), "black")
        units.append(Unit("translate-sweep", i, tuple(a.moved(dx * j * step, dy * j * step) for j in range(n + 1)),
                          param=cfg.size))
    return units


def _scale_sweep(image_wh, rng, cfg):
    k = cfg.sweep_pixels
    units = []
    for i in range(cfg.pairs_per_image):
        a = _embed(image_wh, cfg, rng, cfg.size, (0, 0), "black", grow=k)
        units.append(Unit("scale-sweep", i, tuple(_grown(a, image_wh, cfg.size + j) for j in range(k + 1)),
                          param=cfg.size))
    return units


def plan_steps(protocol: str, image_wh: tuple[int, int], digest: str, cfg: AuditOptions,
               steps: Sequence[int]) -> list[Unit]:
    """Units whose frames are frame A translated by k·shift for each k of ``steps`` (0 first), for the
    per-layer profile (`layers`): frame 1 is the audit's one-pixel shift, further frames the shifts by
    whole strides. embed-black keeps every frame's image whole on the canvas (its origin is drawn as
    translate-sweep's); crop windows one resampled crop (the picture moves by -k·shift). Drawn from the
    protocol's own generator, so the seed and the image decide the frames."""
    if protocol not in STEP_PROTOCOLS:
        raise InputError(f"protocol {protocol} does not translate one picture; choose {' or '.join(STEP_PROTOCOLS)}")
    if cfg.canvas is None:
        raise ValueError("the options have no canvas yet: resolve them against the model first")
    rng = rng_for(cfg.seed, protocol, digest)
    dx, dy = cfg.shift
    reach = max(steps)
    units = []
    for i in range(cfg.pairs_per_image):
        if REGISTRY[protocol].windowed:
            a, sign, size = _crop_frame(image_wh, rng, cfg, reach), -1, None
        else:
            a, sign, size = _embed(image_wh, cfg, rng, cfg.size, (dx * reach, dy * reach), "black"), 1, cfg.size
        units.append(Unit(protocol, i, tuple(a.moved(sign * k * dx, sign * k * dy) for k in steps), param=size))
    return units


def size_sweep_sizes(cfg: AuditOptions) -> list[int]:
    lo, hi, step = cfg.size_sweep
    top = min(cfg.canvas) - max(map(abs, cfg.shift))
    return list(range(lo, min(hi, top) + 1 if hi else top + 1, step))


def _size_sweep(image_wh, rng, cfg):
    """Fig. 6: a shift pair (embed-black) at each embedded size the image allows without upscaling
    or shrinking to fit."""
    H, W = cfg.canvas
    dx, dy = cfg.shift
    units = []
    for s in size_sweep_sizes(cfg):
        if min(image_wh) < s:
            break
        w, h = embedded_size(image_wh, s)
        if w > W - abs(dx) or h > H - abs(dy):
            continue
        for _ in range(cfg.pairs_per_image):
            a = _embed(image_wh, cfg, rng, s, cfg.shift, "black")
            units.append(Unit("size-sweep", len(units), (a, a.moved(dx, dy)), param=s))
    if not units:
        raise TooSmall(f"image {image_wh[0]}x{image_wh[1]} fits no size of the sweep")
    return units


@dataclass(frozen=True)
class Axis:
    """What a sequence's frames step along, as a view's x axis: from a start (the unit's embedded size, or
    0) by a step (an option's value, or 1)."""

    label: str
    start: str | None = None  # the option whose value starts it (a unit's own size first), else 0
    step: str | None = None  # the option whose value is its step, else 1

    def positions(self, unit: dict, config: dict, frames: int) -> np.ndarray:
        import numpy as np  # as in rng_for

        start = unit.get("size", config[self.start]) if self.start else 0
        return start + np.arange(frames) * (config[self.step] if self.step else 1)


@dataclass(frozen=True)
class Protocol:
    """A protocol, and what the audit, its statistics and its views need to know of it."""

    name: str
    build: Callable[[tuple[int, int], np.random.Generator, AuditOptions], list[Unit]]
    kind: str = "pair"  # pair | sequence: a sequence's consecutive frames are compared (its flip probability)
    default: bool = False  # one of the paper's protocols, audited when none is named
    by_size: bool = False  # its statistics are stratified by the embedded size (Fig. 6)
    steps: bool = False  # one picture translated: a layer profile's frames can be planned from it (`plan_steps`)
    windowed: bool = False  # the picture is a window moved over a resampled crop, not an image moved on a canvas
    axis: Axis | None = None  # a sequence's frames step along it


REGISTRY = {p.name: p for p in (
    Protocol("crop", _crop, default=True, steps=True, windowed=True),
    Protocol("embed-black", _embed_shift("black", "embed-black"), default=True, steps=True),
    Protocol("embed-inpaint", _embed_shift("inpaint", "embed-inpaint"), default=True),
    Protocol("scale", _scale, default=True),
    Protocol("null", _null, default=True),
    Protocol("translate-sweep", _translate_sweep, "sequence", axis=Axis("shift (pixels)", step="sweep_step")),
    Protocol("scale-sweep", _scale_sweep, "sequence", axis=Axis("embedded size (pixels)", start="size")),
    Protocol("size-sweep", _size_sweep, by_size=True),
)}
PROTOCOLS = tuple(REGISTRY)
DEFAULT_PROTOCOLS = tuple(n for n, p in REGISTRY.items() if p.default)
# a layer profile's protocols, the one that moves the whole image on a canvas first (the profile's default)
STEP_PROTOCOLS = tuple(sorted((n for n, p in REGISTRY.items() if p.steps), key=lambda n: REGISTRY[n].windowed))
