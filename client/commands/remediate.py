"""``audit-client remediate``: what anti-aliasing would buy this model, and what it would cost, measured on
its own engine without retraining (docs/remediate.md)."""
from __future__ import annotations

from pathlib import Path

from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.engine.remedy import RemedyOptions
from shiftaudit.server.engine.runners import EngineOptions

from ..args import Argument, Command, Options, images
from ..outputs import OutputOptions, check, report_json
from .audit import LABELS
from .common import end, model_files, progress_bar

REMEDIATE = """audit-client remediate: each remedy (blur: BlurPool at every subsampling op; input-blur: a low-pass
of the input; shift-average: the probabilities averaged over a grid of one-pixel shifts) rewrites a copy of
the ONNX graph; every variant is audited with the original on identical frames and ranked by its gain in
invariance, beside its fidelity to the original, its accuracy (with --labels) and its throughput. The model
file is never changed; --write saves the variants. Exit codes as audit-client's (no gates)."""


def _remediate(model: Path, images: Path, options: AuditOptions, preprocessing: dict, engine: EngineOptions,
               labels: Path | None, remedies: RemedyOptions, out: OutputOptions) -> int:
    wanted = out.wanted()
    check(wanted, model_files(model) | ({labels: "the labels file"} if labels else {}))
    from shiftaudit.server.engine.remediate import remediate

    from .. import remediation

    with progress_bar(out.no_progress) as bar:
        doc = remediate(model, images, options, remedies, preprocessing=preprocessing, labels=labels, engine=engine,
                        progress=bar)
    views = {"json": lambda: report_json(doc), "markdown": lambda: remediation.markdown(doc),
             "html": lambda: remediation.page(doc)}
    return end(remediation.format_remediation(doc), wanted, views, doc, None, [])


REMEDIATE_COMMAND = Command("audit-client remediate", REMEDIATE, {
    "model": Argument(("--engine",), {"required": True, "type": Path, "help": "the ONNX model (never changed)"}),
    "images": images(required=True),
    "options": Options(AuditOptions),
    "preprocessing": Options(Preprocessing, raw=True),
    "engine": Options(EngineOptions, only=("device",)),
    "labels": LABELS,
    "remedies": Options(RemedyOptions),
    "out": Options(OutputOptions, only=("json", "markdown", "html", "no_progress"),
                   overrides={"json": {"help": "the remediation (docs/remediate.md)"},
                              "markdown": {"help": "a Markdown summary"},
                              "html": {"help": "one self-contained page: the ranking, the trade-off plot, the "
                                               "caveats"}})}, _remediate)
