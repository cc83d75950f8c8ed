"""``audit-client layers``: the per-layer shiftability profile of an ONNX model (docs/layers.md)."""
from __future__ import annotations

from pathlib import Path

from shiftaudit.server.engine.layers import OPTIONS, PROTOCOL, LayerOptions
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.engine.protocols import STEP_PROTOCOLS
from shiftaudit.server.engine.runners import EngineOptions

from ..args import Argument, Command, Options, images
from ..outputs import OutputOptions, check, report_json
from .common import end, model_files, progress_bar

LAYERS = """audit-client layers: where in the network the invariance breaks (the paper's §3, Fig. 3-4). The
audit's frames, translated by the one-pixel shift and by each whole stride, run through a copy of the
ONNX model that outputs its spatial activations; per tensor: its cumulative stride, the pooled
invariance error, the shiftability error and the equivariance error (docs/layers.md), then the first
tensor where invariance breaks and the subsampling op before it. Exit codes as audit-client's (no gates)."""


def _layers(model: Path, images: Path, options: AuditOptions, preprocessing: dict, engine: EngineOptions,
            layer_options: LayerOptions, out: OutputOptions) -> int:
    wanted = out.wanted()
    check(wanted, model_files(model))
    from .. import layers
    from ..api import profile

    with progress_bar(out.no_progress) as bar:
        doc = profile(model, images, options, layers=layer_options, preprocessing=preprocessing, engine_options=engine,
                      progress=bar)
    views = {"json": lambda: report_json(doc), "markdown": lambda: layers.markdown(doc), "html": lambda: layers.page(doc)}
    return end(layers.format_profile(doc), wanted, views, doc, None, [])


LAYERS_COMMAND = Command("audit-client layers", LAYERS, {
    "model": Argument(("--engine",), {"required": True, "type": Path, "help": "the ONNX model (a TensorRT engine "
                                      "cannot be profiled: profile the ONNX model it was built from)"}),
    "images": images(required=True),
    "options": Options(AuditOptions, only=OPTIONS, overrides={"protocols": {"default": (PROTOCOL,),
                                                                            "choices": STEP_PROTOCOLS}}),
    "preprocessing": Options(Preprocessing, raw=True),
    "engine": Options(EngineOptions, only=("device",)),
    "layer_options": Options(LayerOptions),
    "out": Options(OutputOptions, only=("json", "markdown", "html", "no_progress"),
                   overrides={"json": {"help": "the profile (docs/layers.md)"},
                              "markdown": {"help": "a Markdown summary"},
                              "html": {"help": "one self-contained page: the finding, the plot of the errors against "
                                               "depth, the table"}})}, _layers)
