"""How a model wants its pixels: mean/std, pixel range, channel order, and what its output means.

Comes from options, or from a sidecar ``<model>.json`` next to the model, with ImageNet defaults
(torchvision's mean/std on 0-1 RGB). Mean and std are given in the model's channel order.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from shiftaudit.kernels.tables import Normalisation

from .errors import OptionError
from .options import Numbers, check_names, named_options, option, options_of

OUTPUT_KINDS = ("auto", "logits", "probabilities")
MIN_STD = 1e-4  # below it a pixel's step is 10^4 of the model's units: a typo, not a preprocessing


@named_options
@dataclass(frozen=True)
class Preprocessing:
    mean: tuple[float, float, float] = option((0.485, 0.456, 0.406), "per-channel mean, model channel order "
                                              "(overrides the sidecar)", parse=Numbers(3, ",", float),
                                              metavar="R,G,B", group="model")
    std: tuple[float, float, float] = option((0.229, 0.224, 0.225), "per-channel std, model channel order",
                                             parse=Numbers(3, ",", float), metavar="R,G,B", group="model")
    pixel_range: float = option(1.0, "pixels in 0-1 or 0-255 before mean/std", parse=float, choices=(1.0, 255.0),
                                group="model")  # pixels are divided by 255/pixel_range before mean/std
    channel_order: str = option("RGB", "channel order the model takes", choices=("RGB", "BGR"), group="model")
    output: str = option("auto", "what the model outputs (auto: detected from the first batch)",
                         flag="--output-kind", choices=OUTPUT_KINDS, wire=("output_kind",), group="model")
    labels: str | None = None  # class-names file, relative to the sidecar (sidecar only)
    source: str = field(default="defaults", compare=False)  # the sidecar's path, or "defaults"
    origins: dict[str, str] = field(default_factory=dict, compare=False)  # per value: default, sidecar or options

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3:
            raise OptionError("mean and std need three values each")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (*self.mean, *self.std)):
            raise OptionError(f"mean and std must be finite numbers, not {list(self.mean)} and {list(self.std)}")
        if not all(s >= MIN_STD for s in self.std):
            raise OptionError(f"std must be at least {MIN_STD} in every channel, not {list(self.std)}")
        if self.pixel_range not in (1, 1.0, 255, 255.0):
            raise OptionError(f"pixel_range must be 1 or 255, not {self.pixel_range}")
        if self.channel_order not in ("RGB", "BGR"):
            raise OptionError(f"channel_order must be RGB or BGR, not {self.channel_order!r}")
        if self.output not in OUTPUT_KINDS:
            raise OptionError(f"output must be one of {', '.join(OUTPUT_KINDS)}, not {self.output!r}")

    def normalisation(self) -> Normalisation:
        big = float(np.finfo(np.float32).max)
        if all(abs(v) <= big for v in (*self.std, *self.mean)):  # the frames' bits as they always were
            std = np.asarray(self.std, np.float32)
            scale, bias = (self.pixel_range / 255.0) / std, -np.asarray(self.mean, np.float32) / std
        else:  # beyond float32 (a std of 1e300): in float64, then cast; the audit reports what the model makes of it
            std = np.asarray(self.std, np.float64)
            scale, bias = (self.pixel_range / 255.0) / std, -np.asarray(self.mean, np.float64) / std
            with np.errstate(over="ignore"):
                scale, bias = scale.astype(np.float32), bias.astype(np.float32)
        return Normalisation(scale.astype(np.float32), bias.astype(np.float32), self.channel_order)

    def to_json(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


VALUES = [name for name, _, _ in options_of(Preprocessing)]
SIDECAR_KEYS = {*VALUES, "labels"}
REPORT_SCHEMA = "shiftaudit.report/"  # what a report's "schema" starts with (report.py)


def sidecar_path(model: Path) -> Path:
    return model.with_suffix(".json")


def load_preprocessing(model: Path, **overrides) -> Preprocessing:
    """The sidecar's values (if the file exists) with explicit, non-None overrides on top; ``origins``
    says where each value came from, so a report can warn about defaults."""
    check_names(overrides, VALUES, "preprocessing value")
    base, origins = Preprocessing(), dict.fromkeys(VALUES, "default")
    side = sidecar_path(model)
    if side.is_file():
        try:
            data = json.loads(side.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise OptionError(f"sidecar {side}: not valid JSON ({e})") from None
        if isinstance(data, dict) and str(data.get("schema", "")).startswith(REPORT_SCHEMA):
            raise OptionError(f"{side} is an audit report, not the preprocessing sidecar of {model.name}: move it "
                              "away (audit-client no longer writes a report where a model's sidecar belongs)")
        if not isinstance(data, dict):
            raise OptionError(f"sidecar {side}: not a JSON object")
        unknown = set(data) - SIDECAR_KEYS
        if unknown:
            raise OptionError(f"sidecar {side}: unknown keys {sorted(unknown)}; valid: {', '.join(sorted(SIDECAR_KEYS))}")
        try:
            base = Preprocessing(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()},
                                 source=str(side))
        except (TypeError, ValueError) as e:
            raise OptionError(f"sidecar {side}: {e}") from None
        origins.update(dict.fromkeys(set(data) & set(VALUES), "sidecar"))
    given = {k: v for k, v in overrides.items() if v is not None}
    origins.update(dict.fromkeys(given, "options"))
    return replace(base, **given, origins=origins)


def class_names(model: Path, pre: Preprocessing) -> list[str] | None:
    """Class names from the labels file the sidecar names, one per line in class-index order."""
    if not pre.labels:
        return None
    path = sidecar_path(model).parent / pre.labels
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as e:
        raise OptionError(f"class names file {path}: {e.strerror}") from None
