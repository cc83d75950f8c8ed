"""Resuming an interrupted audit. Ctrl-C (or CancelAudit) ends an audit with a partial report: the images
it finished, and under ``interrupted`` the ones it left. Every draw depends on the seed and the image's
content alone, so auditing the images left, on top of the partial report's statistics, gives the report an
uninterrupted run gives (its time aside). Only the same audit continues: the partial report is checked
against itself (`consistency.check_part`: a tampered part would count wrong), against the model, its
preprocessing and the options, and against the images (each one it audited must still be there, with the
same content)."""
from __future__ import annotations

from pathlib import Path

from .audit import Start
from .consistency import check_part
from .errors import InputError, named
from .files import file_sha256
from .images import ImageSource
from .preprocessing import ORIGINS
from .report import SCHEMA, Report
from .result import MergeError

WHERE = f"the partial report ({named('resume')})"  # the CLI's --resume, the API's resume


def partial_report(doc: dict) -> Report:
    """An interrupted audit's report, checked against itself, or InputError naming it."""
    where = WHERE
    if doc.get("schema") != SCHEMA:
        raise InputError(f"{where}: not a {SCHEMA} report")
    report = Report.from_json(doc)
    if report.interrupted is None:
        raise InputError(f"{where}: the audit of this report ran to its end: there is nothing to resume")
    try:
        check_part(where, report)
    except MergeError as e:
        raise InputError(str(e)) from None
    return report


def check_same_audit(partial: Report, model_sha256: str, preprocessing: dict, config: dict) -> None:
    """The audit asked for is the partial report's: its model, preprocessing and options."""
    where = WHERE
    if partial.model["sha256"] != model_sha256:
        raise InputError(f"{where} audited a model with sha256 {partial.model['sha256'][:12]}…, not this one "
                         f"({model_sha256[:12]}…)")
    # the values, not where they came from: a server's partial report names its own sidecar's path, and it
    # may be resumed in process
    differ = [k for k in ORIGINS if preprocessing.get(k) != partial.model["preprocessing"].get(k)]
    if differ:
        raise InputError(f"{where} was audited with another preprocessing ({', '.join(differ)}): give the options "
                         "it was audited with")
    for key in sorted(set(config) | set(partial.config)):
        if config.get(key) != partial.config.get(key):
            raise InputError(f"{where} was audited with {named(key)} {partial.config.get(key)}, this audit has "
                             f"{config.get(key)}: a resumed audit keeps its options")


def check_files(partial: Report, files: list[tuple[str, Path]]) -> None:
    """Each image the partial report audited is still among ``files`` (name, path), with its content."""
    where = WHERE
    paths = dict(files)
    for record in partial.images:
        path = paths.get(record["image"])
        if path is None:
            raise InputError(f"{where}: its image {record['image']} is no longer among the images")
        if file_sha256(path) != record["sha256"]:
            raise InputError(f"{where}: its image {record['image']} has changed since (sha256 differs)")


def resumed(partial: Report, sources: list[ImageSource]) -> tuple[Start, list[ImageSource]]:
    """Where the resumed audit starts (`audit.Start`), and the sources it still has to audit."""
    left = set(partial.interrupted["left"])
    done = {r["image"] for r in partial.images} | {s["image"] for s in partial.skipped if s["protocol"] is None}
    known = {name for name, _ in sources}
    if missing := sorted((left | done) - known):
        raise InputError(f"the images of the interrupted audit are not all here ({missing[0]} is missing)")
    if added := sorted(known - left - done):
        raise InputError(f"{added[0]} was not among the images of the interrupted audit: resume it on the same images")
    todo = [source for source in sources if source[0] in left]
    result = partial.result()
    result.left = None
    return Start(result, len(sources) - len(todo), {name: i for i, (name, _) in enumerate(sources)}), todo
