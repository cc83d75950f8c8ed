"""``audit-client``: the command line of an audit (`DESCRIPTION`), and the dispatch to the engine tools."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from shiftaudit.server.engine.compare import COMPARE_SCHEMA, CompareError, compare_reports
from shiftaudit.server.engine.errors import AuditError, InputError
from shiftaudit.server.engine.files import Shard, image_files
from shiftaudit.server.engine.labels import few, unknown_names
from shiftaudit.server.engine.layers.profile import MAX_MEMORY, RISE
from shiftaudit.server.engine.layers.profile import OPTIONS as LAYER_OPTIONS
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import Preprocessing, sidecar_path
from shiftaudit.server.engine.protocols import STEP_PROTOCOLS
from shiftaudit.server.engine.render import DEVICES
from shiftaudit.server.engine.report import SCHEMA, MergeError, merge_parts
from shiftaudit.server.engine.runners.manifest import manifest_path
from shiftaudit.server.engine.scale_out import ADDRESSES, RayOptions
from shiftaudit.v1 import audit_service_pb2 as pb

from . import comparison, engine_tools, html, junit, layers, markdown, outputs
from .api import audit, audit_on_ray, compare, profile
from .comparison import format_comparison
from .fanout import run_sharded
from .flags import Parser, add_flags, argument_type, given
from .gates import Check, add_gate_flags, add_increase_flags, checks, increase_checks, verdicts
from .outputs import STDOUT, Output
from .progress import ProgressBar
from .remote import AuditClient, RemoteError
from .table import format_table

DESCRIPTION = """audit-client: audit a model for one-pixel shift sensitivity, with gates for CI pipelines.
audit-client build-engine and audit-client inspect make and check TensorRT engines.

Exit codes: 0 every gate passed, 1 a gate failed, 2 usage or input error (or an output that could not be
written: the report is then saved at a path the error names), 3 the model or engine could not do the job.
Every error is one line on stderr; set SHIFTAUDIT_DEBUG=1 for tracebacks."""
EXIT_PASS, EXIT_GATE, EXIT_USAGE, EXIT_ENGINE = 0, 1, 2, 3
# what the caller can fix; every other status means the server could not do the job (exit 3)
_USAGE_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.OUT_OF_RANGE}


def parser(compare: bool = False) -> argparse.ArgumentParser:
    """audit-client's flags; ``compare``: audit-client compare's, the same with --engine given twice."""
    ap = Parser(prog="audit-client compare" if compare else "audit-client",
                description=COMPARE if compare else DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", required=True, type=Path, action="append" if compare else "store",
                    help=("twice: engine A (the baseline), then engine B; " if compare else "")
                    + "model file (.onnx, or a TensorRT engine .plan/.engine); with --server, its path under the "
                      "server's model root or sha256:DIGEST")
    ap.add_argument("--images", type=_location, help="directory of images (searched recursively); uploaded with "
                    "--server; with --ray also a URI Ray Data reads (s3://..., gs://...)")
    g = ap.add_argument_group("remote audit (without --server the audit runs in this process)")
    g.add_argument("--server", action="append", help="HOST:PORT of an audit-server; repeat to shard the images "
                   "over several servers (by content) and merge their statistics exactly")
    g.add_argument("--data-path", help="with --server: images under the server's data root, instead of --images")
    _connection_flags(g)
    g.add_argument("--timeout", type=float, help="deadline of the remote audit, seconds")
    if not compare:
        g = ap.add_argument_group("scale-out")
        g.add_argument("--shard", type=argument_type("--shard", Shard.parse), metavar="I/N", help="audit only shard "
                       "I of N (0 <= I < N) of the images, split by their content as every scale-out splits them: "
                       "a job array's part; audit-client merge joins the parts")
        g.add_argument("--ray", metavar="ADDRESS", help=f"audit on a Ray cluster with Ray Data: {ADDRESSES} "
                       "(pip install 'shiftaudit[ray]')")
        g.add_argument("--ray-workers", type=int, metavar="N", help="actors (default: as many as the cluster's GPUs, "
                       "or CPUs, hold)")
        g.add_argument("--ray-cpus-per-worker", type=float, default=1.0, metavar="C", help="CPUs of each actor, and "
                       "ONNX Runtime's threads in it (default 1)")
        g.add_argument("--ray-gpus-per-worker", type=float, default=0.0, metavar="G", help="GPUs of each actor "
                       "(default 0: CPU actors)")
        g.add_argument("--ray-batch-images", type=int, default=RayOptions.images_per_batch, metavar="K",
                       help=f"images per actor call (default {RayOptions.images_per_batch})")
    groups = {name: ap.add_argument_group(name) for name in ("frames", "model", "output and gates")}
    add_flags(ap, AuditOptions, groups)
    add_flags(ap, Preprocessing, groups)
    g = groups["model"]
    g.add_argument("--device", choices=DEVICES, default="auto", help="where frames are rendered: cuda (our "
                   "kernels), cpu, or auto (cuda when usable); in-process only, a server picks its own")
    g.add_argument("--allow-engine-host-code", action="store_true", help="let a TensorRT engine that carries host "
                   "code load (deserialising runs it: only for engines you trust); in-process only")
    g.add_argument("--onnx-tensorrt", action="store_true", help="run an ONNX model through ONNX Runtime's TensorRT "
                   "execution provider; in-process only")
    g.add_argument("--labels", type=Path, help="file of 'image,label' lines, for accuracy")
    g = groups["output and gates"]
    _output_flags(g)
    g.add_argument("--no-progress", action="store_true")
    if not compare:  # compare gates the increase only (--max-increase-*)
        add_gate_flags(g)
    if compare:
        g.add_argument("--class-map", type=Path, help="lines 'A_index,B_index' when the engines' classes differ")
    else:
        g.add_argument("--baseline", type=Path, metavar="REPORT", help="a report of the model shipped today, with "
                       "the same options and images: the audit is compared with it pair by pair")
    add_increase_flags(g)
    return ap


def _connection_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--token-file", type=Path, help="bearer token for the server")
    g.add_argument("--tls-ca", type=Path, help="CA certificate to verify the server (enables TLS)")
    g.add_argument("--tls-cert", type=Path, help="client certificate, for servers that require one")
    g.add_argument("--tls-key", type=Path, help="client private key")


def _output_flags(g: argparse._ArgumentGroup) -> None:
    """The views of a report; each FILE may be - (standard output; the table then goes to stderr)."""
    g.add_argument("--json", type=Path, metavar="FILE", help="the report (docs/report.md)")
    g.add_argument("--markdown", type=Path, metavar="FILE",
                   help="a Markdown summary: a CI step summary, a pull-request comment")
    g.add_argument("--junit", type=Path, metavar="FILE", help="JUnit XML: a test case per protocol and gate")
    g.add_argument("--html", type=Path, metavar="FILE", help="one self-contained page (no network): plots, the "
                   "most sensitive pairs, what was audited")
    g.add_argument("--no-thumbnails", action="store_true", help="--html without pictures of the images (for data "
                   "that must not leave the machine)")
    g.add_argument("--layers", type=Path, metavar="PROFILE", help="a layer profile of the same model (audit-client "
                   "layers --json), added to --html and --markdown")


def _checks(report: dict, args: argparse.Namespace) -> list[Check] | None:
    """The gates on the report, and with --baseline the gates on the increase over the baseline."""
    found = checks(report, args)
    against = getattr(args, "against", None)
    extra = increase_checks(against, args) if against is not None else []
    return (found or []) + extra if extra else found


def _outputs(args: argparse.Namespace) -> list[Output]:
    """The views the flags ask for; a --layers profile is loaded now (a typo costs no audit) and added to the
    page and the summary."""
    profile = layers.check(_load_json(args.layers, "--layers"), str(args.layers)) if args.layers else None

    def of(report: dict) -> dict | None:
        if profile and profile["model"]["sha256"] != report["model"]["sha256"]:
            raise InputError(f"--layers {args.layers} profiles another model (sha256 {profile['model']['sha256'][:12]}…) "
                             f"than the report's ({report['model']['sha256'][:12]}…)")
        return profile

    local = args.images if isinstance(getattr(args, "images", None), Path) else None  # a URI's images are not here
    views = {"json": outputs.report_json,
             "markdown": lambda r: markdown.render(r, _checks(r, args)) + (layers.markdown(p) if (p := of(r)) else ""),
             "junit": lambda r: junit.render(r, _checks(r, args)),
             "html": lambda r: html.render(r, _checks(r, args), local, not args.no_thumbnails,
                                           [layers.section(p)] if (p := of(r)) else [])}
    return [Output(f"--{name}", getattr(args, name), view) for name, view in views.items() if getattr(args, name)]


def _client(args: argparse.Namespace, target: str) -> AuditClient:
    """A connection to ``target`` with the user's token and TLS files, each read or named in the error."""
    token = _read(args.token_file, "--token-file").strip() if args.token_file else None
    for path, flag in ((args.tls_ca, "--tls-ca"), (args.tls_cert, "--tls-cert"), (args.tls_key, "--tls-key")):
        if path:
            _read(path, flag)
    return AuditClient(target, token=token, tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key)


def _audit(args: argparse.Namespace, progress: ProgressBar | None) -> dict:
    """The report, from this process or from the server."""
    options = AuditOptions(**given(args, AuditOptions))
    preprocessing = given(args, Preprocessing)
    shard = getattr(args, "shard", None)
    if getattr(args, "ray", None):
        if args.server or shard or args.data_path:
            raise ValueError("--ray runs the audit on a Ray cluster: it takes neither --server, --shard nor --data-path")
        if not args.images:
            raise ValueError("--ray needs --images DIR_OR_URI")
        return audit_on_ray(args.engine, args.images, options, ray=RayOptions(
            args.ray, args.ray_workers, args.ray_cpus_per_worker, args.ray_gpus_per_worker, args.ray_batch_images),
            preprocessing=preprocessing, labels=args.labels, progress=progress,
            allow_engine_host_code=args.allow_engine_host_code)
    if isinstance(args.images, str):
        raise ValueError(f"--images {args.images}: a URI is read by Ray Data (add --ray); otherwise give a directory")
    if not args.server:
        if args.data_path or not args.images:
            raise ValueError("give --images DIR (--data-path needs --server)")
        return audit(args.engine, args.images, options, preprocessing=preprocessing, labels=args.labels,
                     progress=progress, device=args.device, allow_engine_host_code=args.allow_engine_host_code,
                     onnx_tensorrt=args.onnx_tensorrt, shard=shard)
    if bool(args.images) == bool(args.data_path):
        raise ValueError("with --server give either --images DIR (uploaded) or --data-path PATH (on the server)")
    if len(args.server) > 1 and args.data_path:
        raise ValueError("several --server need --images DIR: the client shards the images by content and "
                         "uploads each shard to its server")
    if shard and (len(args.server) > 1 or args.data_path):
        raise ValueError("--shard takes --images DIR and one --server at most (several servers shard by themselves)")
    labels = _read(args.labels, "--labels") if args.labels else ""

    def connect(target: str) -> AuditClient:
        return _client(args, target)

    if len(args.server) > 1:
        return run_sharded(args.server, connect, args.engine.as_posix(), args.images, options,
                           preprocessing=preprocessing, labels_csv=labels, timeout=args.timeout, progress=progress)
    files = image_files(args.images) if args.images else None
    selected = shard.select(files) if shard else None
    if shard and not selected:
        raise InputError(f"shard {shard.index}/{shard.count} holds none of the {len(files)} images: a server cannot "
                         "audit nothing; write this empty part in process (without --server)")
    with connect(args.server[0]) as client:
        report = client.run(args.engine.as_posix(), options, images=args.images, data_path=args.data_path,
                            files=selected, preprocessing=preprocessing,
                            labels_csv=labels, timeout=args.timeout, progress=progress)
    if shard:
        report["shard"] = {**shard.to_json(), "images_listed": len(files)}
        if labels:  # the server saw this shard's names only; a label of another shard's image is not unknown
            report["labels"]["unknown_names"] = few(unknown_names(labels, [name for name, _ in files]))
    return report


def _location(text: str) -> Path | str:
    """--images: a local path, or (with --ray) a URI, kept as text (a Path would fold its '//')."""
    return text if "://" in text else Path(text)


def _read(path: Path, flag: str) -> str:
    """A file the user named, or an error that names the flag."""
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise InputError(f"{flag} {path}: not a text file (UTF-8)") from None
    except OSError as e:
        raise InputError(f"{flag} {path}: {e.strerror}") from None


def _inputs(args: argparse.Namespace, engines: list[Path] | None = None) -> dict[Path, str]:
    """The files this audit reads (of ``engines``, default the one --engine), which no output may overwrite."""
    inputs = {args.labels: "the labels file"} if getattr(args, "labels", None) else {}
    for flag, what in (("class_map", "the class map"), ("layers", "the layer profile")):
        if getattr(args, flag, None):
            inputs[getattr(args, flag)] = what
    if not getattr(args, "server", None):  # the models are local files
        for engine in [args.engine] if engines is None else engines:
            inputs |= {engine: "the model", sidecar_path(engine): "the model's preprocessing sidecar",
                       manifest_path(engine): "the engine's manifest"}
    return inputs


def run(args: argparse.Namespace) -> int:
    wanted = _outputs(args)
    outputs.check(wanted, _inputs(args) | ({args.baseline: "the baseline report"} if args.baseline else {}))
    args.baseline_report = _load_report(args.baseline, "--baseline") if args.baseline else None  # a typo costs no audit
    with _progress(args) as bar:
        report = _audit(args, bar)
    return _finish(report, args, wanted)


@contextmanager
def _progress(args: argparse.Namespace) -> Iterator[ProgressBar | None]:
    """The progress bar the flags ask for (none with --no-progress), closed however the audit ends."""
    bar = None if args.no_progress else ProgressBar()
    try:
        yield bar
    finally:
        if bar:
            bar.close()


def _finish(report: dict, args: argparse.Namespace, wanted: list[Output]) -> int:
    """An audit's ending (`_end`), with its comparison against --baseline; a baseline that does not
    match the audit is an error (exit 2) that costs none of the audit's views."""
    args.against, args.baseline_error = None, None
    if getattr(args, "baseline_report", None) is not None:
        try:
            args.against = compare_reports(args.baseline_report, report)
        except CompareError as e:
            args.baseline_error = str(e)
    found = _checks(report, args)
    table = format_table(report, verdicts(report, found))
    if args.against is not None:
        table += "\nagainst the baseline:\n" + format_comparison(args.against, increase_checks(args.against, args))
    return _end(table, wanted, report, found, [f"--baseline: {args.baseline_error}"] if args.baseline_error else [])


def _end(table: str, wanted: list[Output], document: dict, found: list[Check] | None, errors: list[str]) -> int:
    """The table (on stderr when a view goes to stdout), the views written, and the exit status: 2 on an
    error (a view not written: the document is then saved at a fallback path), else the gates'."""
    print(table, file=sys.stderr if any(o.path == STDOUT for o in wanted) else sys.stdout, flush=True)
    failed = outputs.write(wanted, document) + errors  # the audit and its views are kept whatever else failed
    for line in failed:
        print(f"audit-client: error: {line}", file=sys.stderr)
    if failed:
        return EXIT_USAGE
    return EXIT_GATE if found and any(c.failed for c in found) else EXIT_PASS


def _report_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="audit-client report", description="Render a stored report again: the table, and its views "
                "as files (gates may be applied anew).")
    ap.add_argument("report", type=Path, help="a report written by --json (- : standard input)")
    ap.add_argument("--images", type=Path, help="the audited images, for --html's pictures of the pairs")
    g = ap.add_argument_group("output and gates")
    _output_flags(g)
    add_gate_flags(g)
    return ap


def _load_json(path: Path, flag: str) -> object:
    """A stored document (- : standard input), or an error naming the file (and the flag that named it)."""
    text = sys.stdin.read() if path == STDOUT else _read(path, flag)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e})") from None


def _load_report(path: Path, flag: str = "report") -> dict:
    """A stored report, or an error naming the file (and the flag that named it)."""
    report = _load_json(path, flag)
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise InputError(f"{path}: not a {SCHEMA} report")
    return report


def _run_report(args: argparse.Namespace) -> int:
    report = _load_report(args.report)
    wanted = _outputs(args)
    outputs.check(wanted, _inputs(args, []) | ({} if args.report == STDOUT else {args.report: "the report being rendered"}))
    return _finish(report, args, wanted)


def _get_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="audit-client get", description="Fetch a finished audit's report from a server: the table, "
                "and its views as files.")
    ap.add_argument("audit_id", help="the id RunAudit answered (ListAudits lists them)")
    ap.add_argument("--server", required=True, help="HOST:PORT of the audit-server")
    ap.add_argument("--images", type=Path, help="the audited images, for --html's pictures of the pairs")
    _connection_flags(ap.add_argument_group("connection"))
    g = ap.add_argument_group("output and gates")
    _output_flags(g)
    add_gate_flags(g)
    return ap


def _run_get(args: argparse.Namespace) -> int:
    wanted = _outputs(args)
    outputs.check(wanted, _inputs(args, []))
    with _client(args, args.server) as client:
        audit = client.get(args.audit_id)
    if audit.state != pb.AUDIT_STATE_SUCCEEDED:
        state = pb.AuditState.Name(audit.state).removeprefix("AUDIT_STATE_").lower()
        raise InputError(f"audit {args.audit_id} is {state}" + (f": {audit.error}" if audit.error else "")
                         + ": it has no report")
    return _finish(json.loads(audit.report_json), args, wanted)


def _merge_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="audit-client merge", description="Join the parts of a sharded audit (audit-client --shard I/N "
                "--json PART, one per shard: a Kubernetes Indexed Job, a Slurm array) into the report one audit of "
                "every image gives; parts of different options, models or splits, and a shard given twice or "
                "missing, are refused.")
    ap.add_argument("parts", type=Path, nargs="+", help="the parts' reports (--json of each)")
    ap.add_argument("--images", type=Path, help="the audited images, for --html's pictures of the pairs")
    g = ap.add_argument_group("output and gates")
    _output_flags(g)
    add_gate_flags(g)
    return ap


def _run_merge(args: argparse.Namespace) -> int:
    parts = [(path.name, _load_report(path, "part")) for path in args.parts]
    wanted = _outputs(args)
    outputs.check(wanted, _inputs(args, []) | {path: "a part being merged" for path in args.parts})
    try:
        report = merge_parts(parts)
    except MergeError as e:
        raise InputError(str(e)) from None
    return _finish(report, args, wanted)


def _diff_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="audit-client diff", description="Compare two stored reports of the same audit (options, seed, "
                "images) made by two engines, pair by pair: A is the baseline, B the candidate.")
    ap.add_argument("a", type=Path, help="report of engine A (the baseline)")
    ap.add_argument("b", type=Path, help="report of engine B")
    ap.add_argument("--class-map", type=Path, help="lines 'A_index,B_index' when the engines' classes differ")
    g = ap.add_argument_group("output and gates")
    g.add_argument("--json", type=Path, metavar="FILE", help=f"the comparison ({COMPARE_SCHEMA}; docs/compare.md)")
    g.add_argument("--markdown", type=Path, metavar="FILE", help="a Markdown summary")
    g.add_argument("--junit", type=Path, metavar="FILE", help="JUnit XML: a test case per protocol and gate")
    g.add_argument("--html", type=Path, metavar="FILE", help="one self-contained page")
    add_increase_flags(g)
    return ap


def _class_map(path: Path | None) -> dict[int, int] | None:
    if path is None:
        return None
    pairs = {}
    for n, line in enumerate(_read(path, "--class-map").splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            try:
                a, b = (int(v) for v in line.replace("\t", ",").split(","))
            except ValueError:
                raise InputError(f"--class-map {path}, line {n}: expected 'A_index,B_index'") from None
            pairs[a] = b
    return pairs


def _finish_comparison(comparison: dict, args: argparse.Namespace, wanted: list[Output]) -> int:
    found = increase_checks(comparison, args)
    return _end(format_comparison(comparison, found), wanted, comparison, found, [])


def _comparison_outputs(args: argparse.Namespace) -> list[Output]:
    views = {"json": outputs.report_json, "markdown": lambda c: comparison.markdown(c, increase_checks(c, args)),
             "junit": lambda c: comparison.junit(c, increase_checks(c, args)),
             "html": lambda c: html.render_comparison(c, increase_checks(c, args))}
    return [Output(f"--{name}", getattr(args, name), view) for name, view in views.items() if getattr(args, name, None)]


def _run_diff(args: argparse.Namespace) -> int:
    wanted = _comparison_outputs(args)
    outputs.check(wanted, {args.a: "report A", args.b: "report B"}
                  | ({args.class_map: "the class map"} if args.class_map else {}))
    return _finish_comparison(compare_reports(_load_report(args.a), _load_report(args.b), _class_map(args.class_map)),
                              args, wanted)


def _run_compare(args: argparse.Namespace) -> int:
    """Two audits with the same options, seed and images, then their comparison (as ``diff``)."""
    if len(args.engine) != 2:
        raise InputError("audit-client compare needs --engine twice: A (the baseline), then B")
    wanted = _comparison_outputs(args)
    engines = args.engine
    outputs.check(wanted, _inputs(args, engines))
    class_map = _class_map(args.class_map)
    if isinstance(args.images, str):
        raise InputError(f"--images {args.images}: compare reads local images; a URI is for --ray audits")
    if not args.server:  # one render of every batch for both engines
        if args.data_path or not args.images:
            raise InputError("give --images DIR (--data-path needs --server)")
        with _progress(args) as bar:
            compared = compare(*engines, args.images, AuditOptions(**given(args, AuditOptions)),
                               preprocessing=given(args, Preprocessing), labels=args.labels, class_map=class_map,
                               progress=bar, device=args.device, allow_engine_host_code=args.allow_engine_host_code,
                               onnx_tensorrt=args.onnx_tensorrt)
        return _finish_comparison(compared, args, wanted)
    reports = []  # on a server (or sharded): two audits with the same options, then their comparison
    for engine in engines:
        args.engine = engine
        with _progress(args) as bar:
            reports.append(_audit(args, bar))
    return _finish_comparison(compare_reports(*reports, class_map), args, wanted)


LAYERS = """audit-client layers: where in the network the invariance breaks (the paper's §3, Fig. 3-4). The
audit's frames, translated by the one-pixel shift and by each whole stride, run through a copy of the
ONNX model that outputs its spatial activations; per tensor: its cumulative stride, the pooled
invariance error, the shiftability error and the equivariance error (docs/layers.md), then the first
tensor where invariance breaks and the subsampling op before it. Exit codes as audit-client's (no gates)."""


def _layers_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="audit-client layers", description=LAYERS, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", required=True, type=Path, help="the ONNX model (a TensorRT engine cannot be "
                    "profiled: profile the ONNX model it was built from)")
    ap.add_argument("--images", required=True, type=Path, help="directory of images (searched recursively)")
    groups = {name: ap.add_argument_group(name) for name in ("frames", "model", "layers", "output and gates")}
    add_flags(ap, AuditOptions, groups, only=LAYER_OPTIONS, defaults={"protocols": (("embed-black",), STEP_PROTOCOLS)})
    add_flags(ap, Preprocessing, groups)
    groups["model"].add_argument("--device", choices=DEVICES, default="auto", help="where frames are rendered and "
                                 "the model runs: cuda, cpu, or auto")
    g = groups["layers"]
    g.add_argument("--tensors", nargs="+", default=["stages"], metavar="stages|all|NAME", help="stages: each "
                   "subsampling op's output, the last tensor at each stride and the last before global pooling; "
                   "all: every spatial activation; or tensor names (default: stages)")
    g.add_argument("--rise", type=float, default=RISE, help="the finding: the first tensor whose mean pooled "
                   f"invariance or shiftability error exceeds the tensor before it's by more than this (default {RISE:g})")
    g.add_argument("--max-memory", type=int, default=MAX_MEMORY // 2**20, metavar="MiB", help="activations one "
                   f"engine call may hand back; fewer frames per call below it (default {MAX_MEMORY // 2**20})")
    g = groups["output and gates"]
    g.add_argument("--json", type=Path, metavar="FILE", help="the profile (docs/layers.md)")
    g.add_argument("--markdown", type=Path, metavar="FILE", help="a Markdown summary")
    g.add_argument("--html", type=Path, metavar="FILE", help="one self-contained page: the finding, the plot of the "
                   "errors against depth, the table")
    g.add_argument("--no-progress", action="store_true")
    return ap


def _run_layers(args: argparse.Namespace) -> int:
    views = {"json": outputs.report_json, "markdown": layers.markdown, "html": layers.page}
    wanted = [Output(f"--{name}", getattr(args, name), view) for name, view in views.items() if getattr(args, name)]
    outputs.check(wanted, _inputs(args))
    options = AuditOptions(**({"protocols": ("embed-black",)} | given(args, AuditOptions)))
    with _progress(args) as bar:
        doc = profile(args.engine, args.images, options, tensors=args.tensors, preprocessing=given(args, Preprocessing),
                      rise=args.rise, max_memory=args.max_memory * 2**20, device=args.device, progress=bar)
    return _end(layers.format_profile(doc), wanted, doc, None, [])


COMPARE = """audit-client compare: two engines audited on identical frames (same options, seed and images), then
compared pair by pair: each engine's sensitivity, the paired increase B - A with McNemar's exact test,
and how often the two agree on a frame. Exit codes as audit-client's; the gates are --max-increase-*."""


TOOLS = {"build-engine": engine_tools.build, "inspect": engine_tools.inspect,
         "report": engine_tools.Tool(_report_parser, _run_report), "get": engine_tools.Tool(_get_parser, _run_get),
         "diff": engine_tools.Tool(_diff_parser, _run_diff), "merge": engine_tools.Tool(_merge_parser, _run_merge),
         "compare": engine_tools.Tool(lambda: parser(compare=True), _run_compare),
         "layers": engine_tools.Tool(_layers_parser, _run_layers)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 2 and argv[0] == "--server" and argv[2] == "get":  # audit-client --server S get ID
        argv = ["get", *argv[:2], *argv[3:]]
    tool = TOOLS.get(argv[0]) if argv else None
    args = (tool.parser() if tool else parser()).parse_args(argv[1:] if tool else argv)
    try:
        return (tool.run if tool else run)(args)
    except (FileNotFoundError, InputError, ValueError) as e:
        return _fail(e, EXIT_USAGE)
    except RemoteError as e:
        return _fail(f"server: {e}", EXIT_USAGE if e.code in _USAGE_CODES else EXIT_ENGINE)
    except OSError as e:
        return _fail(e, EXIT_USAGE)
    except AuditError as e:  # the model, the device, a cancelled audit
        return _fail(e, EXIT_ENGINE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_ENGINE)
    except Exception as e:  # a bug of ours: still one line, with the way to the traceback
        if os.environ.get("SHIFTAUDIT_DEBUG"):
            raise
        return _fail(f"internal error: {type(e).__name__}: {e} (SHIFTAUDIT_DEBUG=1 shows the traceback)",
                     EXIT_ENGINE)


def _fail(message: object, code: int) -> int:
    print(f"audit-client: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
