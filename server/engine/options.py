"""Options, defined once: a field of an options dataclass carries an `Option` (`option`), from which
every other place derives what it needs: the command lines' flags (`shiftaudit.server.flags`), the API
message (`shiftaudit.server.wire`, from each field's proto fields), messages that name the field (a
command line writes it as its flag) and, for an audit's options, the report's ``config``
(`AuditOptions.to_json`). A new option is one field (and its proto fields in the .proto). The groups:
`AuditOptions` and `RayOptions` here, `Preprocessing`, `EngineOptions` and `BuildOptions` (runners),
`LayerOptions` (layers), `RemedyOptions`, the client's `Gates`, `OutputOptions` and `Connection`, the
server's `ServerLimits`. Each lives in a light module (no NumPy, no engine, no gRPC): a command line's
help is built from them alone.

Options a user gives may leave the canvas and the batch open: `AuditOptions.resolved` fixes them
from the model (its input size; a TensorRT profile's largest batch).
"""
from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from .errors import OptionError, named
from .geometry import FILTERS
from .protocols import DEFAULT_PROTOCOLS, MAX_PAIRS_PER_IMAGE, MAX_SWEEP_FRAMES, PROTOCOLS

if TYPE_CHECKING:
    from .runners.base import InputSpec

MAX_BATCH = 4096
MAX_CANVAS = 4096  # a side; classifiers take a few hundred pixels, and a frame of 4096² is 200 MB already
DEFAULT_CANVAS = (224, 224)  # for models whose input size is dynamic
DEFAULT_BATCH = 32
# options newer than report v1's first config: in it only when set
SHOWN_WHEN_SET = ("target_halfwidth", "choose_pairs", "large_shift")
SMALL_SHIFT = 8  # pixels: a larger shift is no longer a small perturbation (the paper's are 1 pixel, sweeps up to 8)


@dataclass(frozen=True)
class Numbers:
    """CLI text of a tuple of ``n`` numbers separated by ``sep`` (``1,1``, ``224x224``, ``60:0:8``)."""

    n: int
    sep: str
    kind: type = int

    def __call__(self, text: str) -> tuple:
        try:
            values = tuple(self.kind(v) for v in text.lower().split(self.sep))
        except ValueError:
            values = ()
        if len(values) != self.n:
            raise OptionError(f"expected {self.n} numbers separated by {self.sep!r}, got {text!r}")
        return values

    def format(self, value: tuple) -> str:
        return self.sep.join(f"{v:g}" for v in value)


@dataclass(frozen=True)
class Option:
    """How a field shows outside Python: its flag, help and parser on the command line, its fields in the
    API message (default: one field of the same name), and the group its flag is listed under."""

    help: str
    flag: str | None = None  # default: --field-name
    parse: Callable[[str], Any] | None = None
    choices: tuple | None = None
    metavar: str | None = None
    wire: tuple[str, ...] = ()
    group: str = "frames"
    default_text: str | None = None  # the default as --help states it, when it is not the field's value
    repeat: bool = False  # the flag may be given several times, each adds a value
    many: bool = False  # the flag takes one value or more

    def default_for_help(self, default: Any) -> str:
        if self.default_text is not None:
            return self.default_text
        if isinstance(default, tuple) and isinstance(self.parse, Numbers):
            return self.parse.format(default)
        if isinstance(default, tuple):
            return " ".join(map(str, default))
        return f"{default:g}" if isinstance(default, float) else str(default)


def option(default: Any, help: str, **how: Any) -> Any:
    """A dataclass field with its `Option`."""
    return field(default=default, metadata={"option": Option(help, **how)})


def options_of(cls: type) -> list[tuple[str, Option, Any]]:
    """(name, option, default) of every field of ``cls`` that users set."""
    return [(f.name, f.metadata["option"], f.default) for f in fields(cls) if "option" in f.metadata]


def check_names(names: Any, valid: list[str], what: str) -> None:
    """A misspelt name is an OptionError that suggests the nearest valid one and lists them all (rather
    than Python's "unexpected keyword argument")."""
    for name in names:
        if name not in valid:
            near = difflib.get_close_matches(name, valid, n=1)
            raise OptionError(f"unknown {what} {name!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                              + f"; valid: {', '.join(valid)}")


def named_options(cls: type) -> type:
    """Class decorator for an options dataclass: keyword arguments are checked by `check_names` first."""
    init, valid = cls.__init__, [name for name, _, _ in options_of(cls)]

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_names([k for k in kwargs if k not in {f.name for f in fields(cls)}], valid, "option")
        init(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


@named_options
@dataclass(frozen=True)
class AuditOptions:
    """Field order is the order of the report's ``config`` (and of the flags in ``--help``)."""

    protocols: tuple[str, ...] = option(DEFAULT_PROTOCOLS, "a protocol to run; repeat for several", flag="--protocol",
                                        choices=PROTOCOLS, repeat=True)
    seed: int = option(0, "seed of every random draw", parse=int)
    canvas: tuple[int, int] | None = option(None, "HxW, for models with a dynamic input size", parse=Numbers(2, "x"),
                                            metavar="HxW", wire=("canvas_height", "canvas_width"),
                                            default_text="the model's input; 224x224 when it is dynamic")
    size: int = option(100, "embedded short side S", parse=int)
    shift: tuple[int, int] = option((1, 1), "shift DX,DY of frame B (also the sweeps' direction)",
                                    parse=Numbers(2, ","), metavar="DX,DY", wire=("shift_x", "shift_y"))
    pairs_per_image: int = option(1, "pairs (or sequences) per image and protocol", parse=int)
    filter: str = option("auto", "resampling filter (auto: area when shrinking, bilinear when enlarging)",
                         choices=("auto", *FILTERS))
    sweep_pixels: int = option(8, "K of translate-sweep and scale-sweep", parse=int)
    sweep_step: float = option(1.0, "translate-sweep step, may be sub-pixel", parse=float)
    size_sweep: tuple[int, int, int] = option((60, 0, 8), "MIN:MAX:STEP of size-sweep (MAX 0: largest that fits)",
                                              parse=Numbers(3, ":"), metavar="MIN:MAX:STEP",
                                              wire=("size_sweep_min", "size_sweep_max", "size_sweep_step"))
    batch: int | None = option(None, "frames per engine call", parse=int, group="model",
                               default_text="the engine's largest batch, else 32")
    strict: bool = option(False, "a bad or too small image is an error, not a skip", group="output and gates")
    target_halfwidth: float | None = option(None, "audit the images in content-hash order until every protocol's "
                                            "95 % interval of P(top-1 change) lies within +-H of its value, then stop "
                                            "(the images may run out first: the report says)", parse=float,
                                            metavar="H", default_text="none: every image")
    choose_pairs: bool = option(False, "with --target-halfwidth: choose the pairs per image that reach it with the "
                                "fewest frames, after a pilot of the first 10 images at --pairs-per-image (2 at least); "
                                "the report says what it chose and why")
    large_shift: bool = option(False, f"allow a --shift or --sweep-step of more than {SMALL_SHIFT} pixels (no longer "
                               "the paper's small perturbation)")

    def __post_init__(self) -> None:
        self._normalise()
        unknown = [p for p in self.protocols if p not in PROTOCOLS]
        if unknown or not self.protocols:
            raise OptionError(f"unknown protocol {', '.join(unknown) or '(none)'}; choose from {', '.join(PROTOCOLS)}")
        if self.batch is not None and not 1 <= self.batch <= MAX_BATCH:
            raise OptionError(f"{named('batch')} must lie in 1..{MAX_BATCH}")
        if self.shift == (0, 0):
            raise OptionError(f"{named('shift')} must not be 0,0")
        self._check_small()
        if not 1 <= self.pairs_per_image <= MAX_PAIRS_PER_IMAGE:
            raise OptionError(f"pairs per image must lie in 1..{MAX_PAIRS_PER_IMAGE}")
        if self.filter not in ("auto", *FILTERS):
            raise OptionError(f"unknown filter {self.filter!r}; choose one of auto, {', '.join(FILTERS)}")
        self._check_sweeps()
        if self.target_halfwidth is not None and not 0 < self.target_halfwidth < 0.5:
            raise OptionError(f"target half-width must lie in (0, 0.5), not {self.target_halfwidth:g}")
        if self.choose_pairs and self.target_halfwidth is None:
            raise OptionError(f"{named('choose_pairs')} chooses for a target: give {named('target_halfwidth')} too")

    def _normalise(self) -> None:
        """Lists (JSON, a caller) become tuples; ``protocols="crop"`` is one protocol, not the protocols c,
        r, o, p; protocols lose repeats."""
        if isinstance(self.protocols, str):
            object.__setattr__(self, "protocols", (self.protocols,))
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        object.__setattr__(self, "protocols", tuple(dict.fromkeys(self.protocols)))

    def _check_small(self) -> None:
        """A shift (or sweep step) beyond `SMALL_SHIFT` pixels is refused, saying what it would audit, unless
        asked for: ``--shift 99,99`` would resample crop to (H+99)x(W+99) and compare frames 99 pixels apart."""
        dx, dy = self.shift
        if self.large_shift or (max(abs(dx), abs(dy)) <= SMALL_SHIFT and self.sweep_step <= SMALL_SHIFT):
            return
        if max(abs(dx), abs(dy)) > SMALL_SHIFT:
            raise OptionError(f"{named('shift')} {dx},{dy} is not a small shift: its frames would lie {max(abs(dx), abs(dy))} "
                              f"pixels apart (crop would resample to (H+{abs(dy)})x(W+{abs(dx)}) and window it at 0 and "
                              f"{-dx},{-dy}), not the paper's one pixel; give {named('large_shift')} to audit it anyway "
                              f"(at most {SMALL_SHIFT} pixels otherwise)")
        raise OptionError(f"{named('sweep_step')} {self.sweep_step:g} moves the sequence {self.sweep_step:g} pixels a "
                          f"frame, not a small step; give {named('large_shift')} to audit it anyway (at most "
                          f"{SMALL_SHIFT} pixels otherwise)")

    def _check_sweeps(self) -> None:
        """The sweeps' pixels and step make whole steps, not too many; the size sweep is a range."""
        steps = self.sweep_pixels / self.sweep_step if self.sweep_step > 0 else -1
        if self.sweep_pixels < 1 or not 0 < self.sweep_step <= self.sweep_pixels:
            raise OptionError("sweep needs 1 <= pixels and 0 < step <= pixels")
        if abs(steps - round(steps)) > 1e-9:
            near = sorted((k for k in (self.sweep_pixels / n for n in range(1, MAX_SWEEP_FRAMES)) if round(k, 3) == k),
                          key=lambda k: abs(k - self.sweep_step))[:2]
            raise OptionError(f"sweep step {self.sweep_step:g} does not divide {self.sweep_pixels} pixels into whole "
                              f"steps: try {' or '.join(f'{k:g}' for k in sorted(near))}")
        if round(steps) > MAX_SWEEP_FRAMES - 1:
            raise OptionError(f"sweep step {self.sweep_step:g} makes {round(steps)} steps of {self.sweep_pixels} "
                              f"pixels; at most {MAX_SWEEP_FRAMES - 1}")
        lo, hi, step = self.size_sweep
        if lo < 4 or step < 1 or (hi and hi < lo):
            raise OptionError(f"size sweep {lo}..{hi} step {step} is not a valid range")

    def _check_canvas(self) -> None:
        """What depends on the canvas, checked once it is final (`resolved`)."""
        h, w = self.canvas
        if not 8 <= h <= MAX_CANVAS or not 8 <= w <= MAX_CANVAS:
            raise OptionError(f"canvas {h}x{w} must lie in 8..{MAX_CANVAS} pixels a side")
        room = min(h, w) - max(map(abs, self.shift))
        if not 4 <= self.size <= room:
            raise OptionError(f"embedded size {self.size} must lie in 4..{room} for a {h}x{w} canvas and shift "
                              f"{self.shift}")
        if self.sweep_pixels > min(h, w) // 2:
            raise OptionError(f"sweep needs 1 <= pixels <= {min(h, w) // 2} on a {h}x{w} canvas")

    def resolved(self, spec: InputSpec) -> AuditOptions:
        """The options for this model: the canvas is its input size (another --canvas is an error) unless
        that is dynamic; the batch, unless given, the engine's largest (a TensorRT profile's max) or 32."""
        canvas = self.canvas
        model_hw = (spec.height, spec.width)
        if None not in model_hw:
            if canvas not in (None, model_hw):
                raise OptionError(f"{named('canvas')} {canvas} differs from the model's fixed input {model_hw}")
            canvas = model_hw
        batch = self.batch or (min(spec.max_batch, MAX_BATCH) if spec.max_batch else DEFAULT_BATCH)
        resolved = replace(self, canvas=canvas or DEFAULT_CANVAS, batch=batch)
        resolved._check_canvas()
        return resolved

    def to_json(self) -> dict:
        """The report's ``config``; an option added within v1 only when set, so that stored reports and
        their readers see the config they knew."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: list(v) if isinstance(v, tuple) else v for name, v in values.items()
                if name not in SHOWN_WHEN_SET or v not in (None, False)}


ADDRESSES = "local (a cluster in this process), auto (the running one, or RAY_ADDRESS) or HOST:PORT"


@named_options
@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: ``address`` (`ADDRESSES`), ``workers`` actors (default: as many as the cluster's
    GPUs, or CPUs, hold), each with ``cpus_per_worker`` CPUs (ONNX Runtime's threads: Ray sets
    OMP_NUM_THREADS=1 in its workers, so they are set explicitly) and ``gpus_per_worker`` GPUs (0: CPU
    actors); ``images_per_batch`` images per actor call."""

    address: str = option("auto", f"audit on a Ray cluster with Ray Data: {ADDRESSES} (pip install "
                          "'shiftaudit[ray]')", flag="--ray", metavar="ADDRESS", group="scale-out",
                          default_text="none: in this process, or on --server")
    workers: int | None = option(None, "actors", flag="--ray-workers", parse=int, metavar="N", group="scale-out",
                                 default_text="as many as the cluster's GPUs, or CPUs, hold")
    cpus_per_worker: float = option(1.0, "CPUs of each actor, and ONNX Runtime's threads in it",
                                    flag="--ray-cpus-per-worker", parse=float, metavar="C", group="scale-out")
    gpus_per_worker: float = option(0.0, "GPUs of each actor (0: CPU actors)", flag="--ray-gpus-per-worker",
                                    parse=float, metavar="G", group="scale-out")
    images_per_batch: int = option(8, "images per actor call", flag="--ray-batch-images", parse=int, metavar="K",
                                   group="scale-out")

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise OptionError(f"{named('workers')} must be at least 1")
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise OptionError(f"{named('cpus_per_worker')} must be above 0 and {named('gpus_per_worker')} at least 0")
        if self.images_per_batch < 1:
            raise OptionError(f"{named('images_per_batch')} must be at least 1")

    @property
    def threads(self) -> int:
        return max(1, math.floor(self.cpus_per_worker))

    def pool_size(self, resources: dict[str, float]) -> int:
        """The actors: as asked, or as many as the cluster holds (one at least)."""
        if self.workers:
            return self.workers
        if self.gpus_per_worker:
            return max(1, int(resources.get("GPU", 0) // self.gpus_per_worker))
        return max(1, int(resources.get("CPU", 1) // self.cpus_per_worker))
