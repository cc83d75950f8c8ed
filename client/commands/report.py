"""A report's ending, whatever made it (an audit, a stored report, one fetched from a server, merged parts):
its gates and, against a baseline, the gates on the increase, judged once into a `Summary` that the table
and every view render; and the commands that render a stored report again: ``report``, ``get``,
``merge``."""
from __future__ import annotations

import json
import shlex
from datetime import datetime
from pathlib import Path

from shiftaudit.server.engine.errors import InputError

from ..args import Argument, Command, Options, images
from ..connection import Connection
from ..gates import Gates
from ..interrupt import EXIT_INTERRUPTED
from ..outputs import Output, OutputOptions, check, report_json
from .common import end, load_json, load_report

GATES = Options(Gates, only=("max_p_top1_change", "max_mac", "gate_on", "inconclusive", "judge_anyway"))
OUTPUTS = Options(OutputOptions, only=("json", "markdown", "junit", "html", "no_thumbnails", "layers"))


def load_profile(path: Path | None) -> dict | None:
    """The layer profile --layers names, read before any work (a typo costs no audit)."""
    if path is None:
        return None
    from .. import layers

    return layers.check(load_json(path, "layers"), str(path))


def finish(report: dict, out: OutputOptions, gates: Gates, wanted: list[Output], images: Path | None = None,
           profile: dict | None = None, baseline: dict | None = None) -> int:
    """The table, the views and the exit status of ``report``; a ``baseline`` that does not match the
    audit is an error (exit 2) that costs none of its views."""
    from shiftaudit.server.engine.compare import CompareError, compare_reports

    from ..summary import summarise, summarise_comparison
    from ..table import format_comparison, format_table

    errors, comparison = [], None
    if baseline is not None:
        try:
            comparison = compare_reports(baseline, report)
        except CompareError as e:
            errors.append(f"--baseline: {e}")
    increase = gates.increase_checks(comparison) if comparison is not None else []
    checks = gates.checks(report)
    summary = summarise(report, (checks or []) + increase if increase else checks, gates)
    table = format_table(summary)
    if comparison is not None:
        table += "\nagainst the baseline:\n" + format_comparison(summarise_comparison(comparison, increase, gates))

    def added() -> dict | None:
        if profile and profile["model"]["sha256"] != report["model"]["sha256"]:
            raise InputError(f"--layers {out.layers} profiles another model (sha256 {profile['model']['sha256'][:12]}…) "
                             f"than the report's ({report['model']['sha256'][:12]}…)")
        return profile

    def markdown() -> str:
        from .. import markdown

        if (profile := added()) is None:
            return markdown.render(summary, "")
        from .. import layers  # its machinery only with a profile

        return markdown.render(summary, layers.markdown(profile))

    def html() -> str:
        from .. import html

        if profile := added():
            from .. import layers
        return html.render(report, summary, images if isinstance(images, Path) else None, not out.no_thumbnails,
                           [layers.section(profile)] if profile else [],
                           f"{summary.command} {shlex.join(['--layers', str(out.layers)])}" if profile else None)

    def junit() -> str:
        from .. import junit

        return junit.render(summary)

    views = {"json": lambda: report_json(report), "markdown": markdown, "junit": junit, "html": html}
    return end(table, wanted, views, report, summary.verdict, errors)


def prepare(out: OutputOptions, protected: dict[Path, str]) -> tuple[list[Output], dict | None]:
    """Before any work: the views asked for, their paths checked (none may overwrite a file the run reads,
    ``protected``), and the layer profile to add to them."""
    wanted, profile = out.wanted(), load_profile(out.layers)
    check(wanted, protected | ({out.layers: "the layer profile"} if out.layers else {}))
    return wanted, profile


def _report(path: Path, images: Path | None, out: OutputOptions, gates: Gates) -> int:
    report = load_report(path)
    wanted, profile = prepare(out, {} if str(path) == "-" else {path: "the report being rendered"})
    return finish(report, out, gates, wanted, images, profile)


def _get(audit_id: str, server: str, images: Path | None, connection: Connection, out: OutputOptions,
         gates: Gates) -> int:
    from ..audits import placed

    wanted, profile = prepare(out, {})
    with connection.connect(server) as client:
        audit = client.get(audit_id)
    report = placed(json.loads(audit.report_json), server) if audit.report_json else None
    if report is None:
        raise InputError(f"audit {audit_id} is {state_name(audit.state)}" + (f": {audit.error}" if audit.error else "")
                         + ": it has no report")
    code = finish(report, out, gates, wanted, images, profile)
    return EXIT_INTERRUPTED if report.get("interrupted") else code


def state_name(state: int) -> str:
    from shiftaudit.v1 import audit_service_pb2 as pb

    return pb.AuditState.Name(state).removeprefix("AUDIT_STATE_").lower()


LIST_HEAD = ["audit", "state", "model", "started", "images", "verdict"]


def _list(server: str, connection: Connection, limit: int, gates: Gates) -> int:
    """The server's audits, newest first, one line each: with gates, each report's verdict under them;
    without, its most sensitive protocol."""
    from ..table import grid

    with connection.connect(server) as client:
        audits = client.list(limit)
    rows = [[a.audit_id, state_name(a.state), a.model_path,
             datetime.fromtimestamp(a.created_at.ToSeconds()).strftime("%Y-%m-%d %H:%M:%S"),
             (str(a.images) + (f" ({a.images_left} left)" if a.images_left else "")) if a.summary_json else "–",
             _listed_verdict(json.loads(a.summary_json), a.images, gates) if a.summary_json else (a.error or "–")]
            for a in audits]
    print("\n".join(grid(LIST_HEAD, rows, left=(0, 1, 2, 3, 5))) if rows else f"no audits on {server}")
    return 0


def _listed_verdict(summary: dict, images: int, gates: Gates) -> str:
    """A listed report's verdict under ``gates``, or without gates its most sensitive protocol."""
    from ..summary import estimate
    from ..verdict import judge, verdict

    checks = gates.checks(summary)
    if checks is None:
        measured = {name: p["p_top1_change"]["value"] for name, p in summary["protocols"].items()
                    if p["p_top1_change"]["value"] is not None}
        if not measured:
            return "no pairs measured"
        worst = max(measured, key=measured.get)
        return f"most sensitive: {worst}, P(top-1 change) {estimate(summary['protocols'][worst]['p_top1_change'])}"
    return verdict([judge(c, gates, images, summary["cannot_judge"]) for c in checks]).text


def _merge(parts: list[Path], images: Path | None, out: OutputOptions, gates: Gates) -> int:
    from shiftaudit.server.engine.report import MergeError, Report, merge_parts

    reports = [(path.name, Report.from_json(load_report(path, "part"))) for path in parts]
    wanted, profile = prepare(out, {path: "a part being merged" for path in parts})
    try:
        report = merge_parts(reports).to_json()
    except MergeError as e:
        raise InputError(str(e)) from None
    return finish(report, out, gates, wanted, images, profile)


IMAGES = images("the audited images, for --html's pictures of the pairs")
REPORT = Command("audit-client report", "Render a stored report again: the table, and its views as files (gates may "
                 "be applied anew).", {"path": Argument(("report",), {"type": Path, "help": "a report written by "
                                                        "--json (- : standard input)"}),
                                       "images": IMAGES, "out": OUTPUTS, "gates": GATES}, _report)
LIST = Command("audit-client list", "List a server's audits, newest first: id, state, model, when, images and, with "
               "gates, each one's verdict (audit-client get ID fetches one).",
               {"server": Argument(("--server",), {"required": True, "help": "HOST:PORT of the audit-server"}),
                "connection": Options(Connection, only=("token_file", "tls_ca", "tls_cert", "tls_key")),
                "limit": Argument(("--limit",), {"type": int, "default": 20, "help": "how many (default 20)"}),
                "gates": GATES}, _list)
GET = Command("audit-client get", "Fetch a finished audit's report from a server: the table, and its views as files.",
              {"audit_id": Argument(("audit_id",), {"help": "the id the audit printed when it started (audit-client list --server S lists them)"}),
               "server": Argument(("--server",), {"required": True, "help": "HOST:PORT of the audit-server"}),
               "images": IMAGES, "connection": Options(Connection, only=("token_file", "tls_ca", "tls_cert", "tls_key")),
               "out": OUTPUTS, "gates": GATES}, _get)
MERGE = Command("audit-client merge", "Join the parts of a sharded audit (audit-client --shard I/N --json PART, one "
                "per shard: a Kubernetes Indexed Job, a Slurm array) into the report one audit of every image gives; "
                "parts of different options, models or splits, and a shard given twice or missing, are refused.",
                {"parts": Argument(("parts",), {"type": Path, "nargs": "+", "help": "the parts' reports (--json of "
                                                "each)"}),
                 "images": IMAGES, "out": OUTPUTS, "gates": GATES}, _merge)
