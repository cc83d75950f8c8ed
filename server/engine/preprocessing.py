"""How a model wants its pixels: mean/std, pixel range, channel order, and what its output means.

Each value comes from the first of: the options (a value, or a `PRESETS` convention by name), a sidecar
``<model>.json`` next to the model (values, or a preset), the ONNX model's own ``metadata_props`` (ONNX's
``Image.*`` keys, or ours: `METADATA`), or ImageNet's defaults (torchvision's mean/std on 0-1 RGB), and
``origins`` records which, so that every report says what was guessed. Mean and std are given in the
model's channel order.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from shiftaudit.kernels.tables import Normalisation

from .errors import OptionError, named
from .options import Numbers, check_names, named_options, option, options_of

OUTPUT_KINDS = ("auto", "logits", "probabilities")
MIN_STD = 1e-4  # below it a pixel's step is 10^4 of the model's units: a typo, not a preprocessing
PRESETS = {  # the common conventions, by name: what --preset NAME (or a sidecar's "preset") means
    "imagenet": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "pixel_range": 1.0,
                 "channel_order": "RGB"},  # torchvision, timm: ImageNet's mean and std on 0-1 RGB
    "inception": {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "pixel_range": 1.0,
                  "channel_order": "RGB"},  # [-1, 1]: TensorFlow's Inception, MobileNet, EfficientNet-Lite
    "zero-one": {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "pixel_range": 1.0, "channel_order": "RGB"},
    "caffe": {"mean": (103.939, 116.779, 123.68), "std": (1.0, 1.0, 1.0), "pixel_range": 255.0,
              "channel_order": "BGR"},  # Caffe, Keras' "caffe" mode: 0-255 BGR less ImageNet's means
}
METADATA = "shiftaudit.preprocessing"  # an ONNX metadata_props key: a JSON object of sidecar keys
IMAGE_RANGES = {  # ONNX's Image.NominalPixelRange (onnx/docs/MetadataProps.md) as our values
    "NominalRange_0_255": {"pixel_range": 255.0, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},
    "Normalized_0_1": {"pixel_range": 1.0, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},
    "Normalized_1_1": {"pixel_range": 1.0, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
}
IMAGE_FORMATS = {"Rgb8": "RGB", "Rgba8": "RGB", "Bgr8": "BGR", "Bgra8": "BGR"}  # Image.BitmapPixelFormat


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
    preset: str | None = option(None, "a common convention for mean, std, pixel range and channel order: imagenet "
                                "(0-1 RGB less ImageNet's mean, over its std), inception ([-1, 1]), zero-one, caffe "
                                "(0-255 BGR less Caffe's means); the value flags override it", choices=tuple(PRESETS),
                                group="model", default_text="none")
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
        if self.preset is not None and self.preset not in PRESETS:
            raise OptionError(f"{named('preset')} must be one of {', '.join(PRESETS)}, not {self.preset!r}")

    def normalisation(self) -> Normalisation:
        import numpy as np  # not at the top: an option group stays light (docs/decisions.md, "Start-up")

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
        """As reports record it; ``preset`` only when one was named (reports before it know no such key)."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        if d["preset"] is None:
            del d["preset"]
        return d


VALUES = [name for name, _, _ in options_of(Preprocessing)]
ORIGINS = [name for name in VALUES if name != "preset"]  # the values a report says the origin of
SIDECAR_KEYS = {*VALUES, "labels"}
REPORT_SCHEMA = "shiftaudit.report/"  # what a report's "schema" starts with (report.py)


def sidecar_path(model: Path) -> Path:
    return model.with_suffix(".json")


def load_preprocessing(model: Path, **overrides) -> Preprocessing:
    """The model's preprocessing: each value from the options (``overrides``, not None), else the sidecar,
    else the ONNX model's metadata, else the default; a preset named by the options or the sidecar gives
    its values there, under that source's explicit ones. ``origins`` says where each value came from."""
    check_names(overrides, VALUES, "preprocessing value")
    side = sidecar_path(model)
    sidecar = _sidecar(model, side) if side.is_file() else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    values, origins = {}, dict.fromkeys(ORIGINS, "default")
    for origin, layer in (("metadata", _metadata(model)), ("sidecar", _expanded(sidecar)),
                          ("preset", PRESETS.get(given.get("preset"), {})), ("options", given)):
        values |= layer
        origins |= dict.fromkeys((k for k in layer if k in origins), origin)
    try:
        return Preprocessing(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()},
                             source=str(side) if side.is_file() else "defaults", origins=origins)
    except TypeError as e:
        raise OptionError(f"preprocessing: {e}") from None


def _expanded(values: dict) -> dict:
    """A source's values with the preset it names expanded under its explicit values."""
    return {**PRESETS.get(values.get("preset"), {}), **values} if values.get("preset") in PRESETS else values


def _sidecar(model: Path, side: Path) -> dict:
    """The sidecar's keys, checked."""
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
        Preprocessing(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    except (TypeError, ValueError) as e:
        raise OptionError(f"sidecar {side}: {e}") from None
    return data


def _metadata(model: Path) -> dict:
    """What an ONNX model's exporter wrote about its input in ``metadata_props``: ONNX's own
    ``Image.NominalPixelRange`` and ``Image.BitmapPixelFormat``, and ours, `METADATA` (a JSON object of
    sidecar keys, over the former)."""
    if model.suffix.lower() != ".onnx" or not model.is_file():
        return {}
    props = _props(model, model.stat().st_mtime_ns)
    values = dict(IMAGE_RANGES.get(props.get("Image.NominalPixelRange"), {}))
    if props.get("Image.BitmapPixelFormat") in IMAGE_FORMATS:
        values["channel_order"] = IMAGE_FORMATS[props["Image.BitmapPixelFormat"]]
    if METADATA in props:
        try:
            ours = json.loads(props[METADATA])
            Preprocessing(**{k: tuple(v) if isinstance(v, list) else v for k, v in ours.items() if k in VALUES})
        except (TypeError, ValueError, AttributeError) as e:
            raise OptionError(f"{model.name}: its metadata_props {METADATA} is not a JSON object of "
                              f"{', '.join(VALUES)} ({e})") from None
        values |= {k: v for k, v in ours.items() if k in VALUES}
    return values


@lru_cache(maxsize=16)
def _props(model: Path, modified: int) -> dict[str, str]:
    """An ONNX model's metadata_props (read once per version of the file), straight from its protobuf
    encoding: ModelProto's field 14, entries of (key 1, value 2). Importing the onnx package for this costs
    a second of interpreter time, which a server's event loop would wait out."""
    data = model.read_bytes()
    props: dict[str, str] = {}
    try:
        for number, value in _fields(data):
            if number == 14:
                entry = dict(_fields(value))
                props[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
    except (IndexError, ValueError, UnicodeDecodeError):  # not ONNX after all: the runner says so, in its words
        return {}
    return props


def _fields(data: bytes):  # noqa: ANN202 (a generator of (field number, bytes or int))
    """The top-level fields of a protobuf message: (number, its bytes for length-delimited ones, else its
    integer); the others' contents are skipped over, not parsed."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, kind = key >> 3, key & 7
        if kind == 0:
            value, at = _varint(data, at)
        elif kind == 2:
            size, at = _varint(data, at)
            value, at = data[at:at + size], at + size
        elif kind in (1, 5):
            value, at = None, at + (8 if kind == 1 else 4)
        else:
            raise ValueError(f"protobuf wire type {kind}")
        yield number, value


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def class_names(model: Path, pre: Preprocessing) -> list[str] | None:
    """Class names from the labels file the sidecar names, one per line in class-index order."""
    if not pre.labels:
        return None
    path = sidecar_path(model).parent / pre.labels
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as e:
        raise OptionError(f"class names file {path}: {e.strerror}") from None
