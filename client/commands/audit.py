"""``audit-client``: audit a model (in this process, on a server or several, a job array's part, or on Ray),
then the table, the views and the gates; with ``--baseline``, the audit compared pair by pair with the
report of the model shipped today."""
from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from pathlib import Path

from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.engine.runners import EngineOptions

from ..args import Argument, Command, Given, Options, SourceArgs, file
from ..gates import Gates
from ..interrupt import EXIT_INTERRUPTED, Interruption
from ..outputs import STDOUT, Output, OutputOptions
from ..source import Source
from .common import load_report, model_files, progress_bar
from .report import finish, prepare

DESCRIPTION = """audit-client: audit a model for one-pixel shift sensitivity, with gates for CI pipelines.

Other commands (audit-client COMMAND --help says more):
{commands}

Exit codes: 0 every gate passed, 1 a gate failed, 2 usage or input error (or an output that could not be
written: the report is then saved at a path the error names), 3 the model or engine could not do the job,
4 no gate failed but one was inconclusive (its interval straddles the limit: too few images to tell),
130 interrupted (Ctrl-C, SIGTERM): the images finished are written as a partial report, which --resume continues.
Every error is one line on stderr; set SHIFTAUDIT_DEBUG=1 for tracebacks."""
MODEL = ("model file (.onnx, or a TensorRT engine .plan/.engine); with --server, its path under the server's model "
         "root or sha256:DIGEST")
LABELS = file("--labels", "file of 'image,label' lines, for accuracy")


def inputs(source: Source, labels: Path | None, *models: Path) -> dict[Path, str]:
    """The files an audit reads, which no output may overwrite: the labels, and the models where they are
    local files (not on a server)."""
    return ({labels: "the labels file"} if labels else {}) | ({} if source.servers else model_files(*models))


def _audit(model: Path, source: Source, options: AuditOptions, given: dict, preprocessing: dict,
           engine: EngineOptions, labels: Path | None, baseline: Path | None, resume: Path | None, out: OutputOptions,
           gates: Gates) -> int:
    from ..audits import AuditRequest, run_audit

    wanted, profile = prepare(out, inputs(source, labels, model) | ({baseline: "the baseline report"} if baseline else {}))
    shipped = load_report(baseline, "baseline") if baseline else None  # a typo costs no audit
    partial = load_report(resume, "resume") if resume else None
    if partial is not None:  # its options, and none given that differ (the audit checks every one)
        options = AuditOptions(**(partial["config"] | given))
    request = AuditRequest(model, source, options, preprocessing, labels, engine, partial)
    with progress_bar(out.no_progress) as bar, Interruption() if source.resumable else nullcontext() as stop:
        report = run_audit(request, bar, stop)
    images = source.images if isinstance(source.images, Path) else None
    if not report.get("interrupted"):
        return finish(report, out, gates, wanted, images, profile, shipped)
    kept = out.json if out.json not in (None, STDOUT) else Path(f"shiftaudit-partial-{time.strftime('%Y%m%d-%H%M%S')}.json")
    if out.json in (None, STDOUT):  # a partial report is worth nothing unless it can be resumed
        wanted.append(Output("--json", kept, "json"))
    finish(report, out, gates, wanted, images, profile, shipped)
    print(f"audit-client: interrupted with {report['interrupted']['images_left']} images left: the partial report is "
          f"{kept}; the same command with --resume {kept} continues it", file=sys.stderr)
    return EXIT_INTERRUPTED


AUDIT = Command("audit-client", DESCRIPTION, {
    "model": Argument(("--engine",), {"required": True, "type": Path, "help": MODEL}),
    "source": SourceArgs(),
    "options": Options(AuditOptions),
    "given": Given(AuditOptions),
    "preprocessing": Options(Preprocessing, raw=True),
    "engine": Options(EngineOptions),
    "labels": LABELS,
    "baseline": file("--baseline", "a report of the model shipped today, with the same options and images: the audit "
                     "is compared with it pair by pair", "REPORT", "output and gates"),
    "resume": file("--resume", "continue an interrupted audit from its partial report (what Ctrl-C writes), with the "
                   "same command: only the images it left are audited, and the report is an uninterrupted run's",
                   "PARTIAL", "output and gates"),
    "out": Options(OutputOptions),
    "gates": Options(Gates)}, _audit)
