"""``audit-client compare`` (two engines audited on identical frames, then compared pair by pair) and
``audit-client diff`` (the same comparison of two stored reports)."""
from __future__ import annotations

from pathlib import Path

from shiftaudit.server.engine.errors import InputError
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.engine.runners import EngineOptions

from ..args import Argument, Command, Options, SourceArgs, file
from ..connection import read_text
from ..gates import Gates
from ..outputs import Output, OutputOptions, check, report_json
from ..source import Source
from .audit import LABELS, MODEL, inputs
from .common import end, load_report, progress_bar

COMPARE = """audit-client compare: two engines audited on identical frames (same options, seed and images), then
compared pair by pair: each engine's sensitivity, the paired increase B - A with McNemar's exact test,
and how often the two agree on a frame. Exit codes as audit-client's; the gates are --max-increase-*."""
GATES = Options(Gates, only=("max_increase_p_top1_change", "max_increase_mac", "gate_on", "inconclusive"))
OUTPUTS = Options(OutputOptions, only=("json", "markdown", "junit", "html"),
                  overrides={"json": {"help": "the comparison, as JSON (its schema: docs/compare.md)"},
                             "markdown": {"help": "a Markdown summary"}, "html": {"help": "one self-contained page"}})
CLASS_MAP = file("--class-map", "lines 'A_index,B_index' when the engines' classes differ")


def class_map(path: Path | None) -> dict[int, int] | None:
    if path is None:
        return None
    pairs = {}
    for n, line in enumerate(read_text(path, "class_map").splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            try:
                a, b = (int(v) for v in line.replace("\t", ",").split(","))
            except ValueError:
                raise InputError(f"--class-map {path}, line {n}: expected 'A_index,B_index'") from None
            pairs[a] = b
    return pairs


def _finish(comparison: dict, wanted: list[Output], gates: Gates, images: Path | None = None,
            thumbnails: bool = True) -> int:
    from ..summary import summarise_comparison
    from ..table import format_comparison

    summary = summarise_comparison(comparison, gates.increase_checks(comparison), gates)

    def markdown() -> str:
        from .. import markdown

        return markdown.render_comparison(summary)

    def html() -> str:
        from .. import html

        return html.render_comparison(comparison, summary, images, thumbnails)

    def junit() -> str:
        from .. import junit

        return junit.render_comparison(summary)

    views = {"json": lambda: report_json(comparison), "markdown": markdown, "junit": junit, "html": html}
    return end(format_comparison(summary), wanted, views, comparison, summary.verdict, [])


def _diff(a: Path, b: Path, class_map_file: Path | None, out: OutputOptions, gates: Gates) -> int:
    from shiftaudit.server.engine.compare import compare_reports

    wanted = out.wanted()
    check(wanted, {a: "report A", b: "report B"} | ({class_map_file: "the class map"} if class_map_file else {}))
    return _finish(compare_reports(load_report(a), load_report(b), class_map(class_map_file)), wanted, gates)


def _compare(models: list[Path], source: Source, options: AuditOptions, preprocessing: dict, engine: EngineOptions,
             labels: Path | None, class_map_file: Path | None, out: OutputOptions, gates: Gates) -> int:
    """Two audits with the same options, seed and images, then their comparison (as ``diff``)."""
    from shiftaudit.server.engine.compare import compare_reports

    from ..audits import AuditRequest, run_audit

    if len(models) != 2:
        raise InputError("audit-client compare needs --engine twice: A (the baseline), then B")
    wanted = out.wanted()
    check(wanted, inputs(source, labels, *models) | ({class_map_file: "the class map"} if class_map_file else {}))
    classes = class_map(class_map_file)
    images = source.local_images("compare")
    if not source.servers:  # one render of every batch for both engines
        source.check()
        from ..api import compare

        with progress_bar(out.no_progress) as bar:
            compared = compare(*models, images, options, preprocessing=preprocessing, labels=labels,
                               class_map=classes, engine_options=engine, progress=bar)
        return _finish(compared, wanted, gates, images, not out.no_thumbnails)
    reports = []  # on a server (or sharded): two audits with the same options, then their comparison
    for model in models:
        with progress_bar(out.no_progress) as bar:
            reports.append(run_audit(AuditRequest(model, source, options, preprocessing, labels, engine), bar))
    return _finish(compare_reports(*reports, classes), wanted, gates, images, not out.no_thumbnails)


COMPARE_COMMAND = Command("audit-client compare", COMPARE, {
    "models": Argument(("--engine",), {"required": True, "type": Path, "action": "append",
                                       "help": "twice: engine A (the baseline), then engine B; " + MODEL}),
    "source": SourceArgs(shard=False, ray=False),
    "options": Options(AuditOptions),
    "preprocessing": Options(Preprocessing, raw=True),
    "engine": Options(EngineOptions),
    "labels": LABELS,
    "class_map_file": CLASS_MAP,
    "out": Options(OutputOptions, only=("json", "markdown", "junit", "html", "no_thumbnails", "no_progress"),
                   overrides=OUTPUTS.overrides),
    "gates": GATES}, _compare)
DIFF = Command("audit-client diff", "Compare two stored reports of the same audit (options, seed, images) made by "
               "two engines, pair by pair: A is the baseline, B the candidate.", {
                   "a": Argument(("a",), {"type": Path, "help": "report of engine A (the baseline)"}),
                   "b": Argument(("b",), {"type": Path, "help": "report of engine B"}),
                   "class_map_file": CLASS_MAP, "out": OUTPUTS, "gates": GATES}, _diff)
