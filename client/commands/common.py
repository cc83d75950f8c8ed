"""What the subcommands share: the progress bar, stored documents read back, the files a run reads (which
no output may overwrite), and the ending of every run: the table, the views written, the exit status.

A command module imports at its top only what builds its parser (`args`, the option groups: all light);
what its run needs (the engine, gRPC, the views) is imported in the run, so that ``--help`` and every
other command start without it (docs/decisions.md, "Start-up")."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from shiftaudit.server.engine.errors import InputError
from shiftaudit.server.engine.preprocessing import sidecar_path
from shiftaudit.server.engine.runners.manifest import manifest_path

from .. import outputs
from ..connection import read_text
from ..outputs import STDOUT, Output

if TYPE_CHECKING:
    from ..progress import ProgressBar
    from ..verdict import Verdict

EXIT_USAGE, EXIT_ENGINE = 2, 3  # a gate's: 0 pass, 1 fail, 4 inconclusive (`verdict.Outcome.exit`)


@contextmanager
def progress_bar(off: bool) -> Iterator[ProgressBar | None]:
    """The progress bar (none when ``off``: then its library is not even loaded), closed however the run ends."""
    if off:
        yield None
        return
    from ..progress import ProgressBar

    bar = ProgressBar()
    try:
        yield bar
    finally:
        bar.close()


def load_json(path: Path, field: str) -> object:
    """A stored document (- : standard input), or an error naming the file (and the option that named it)."""
    text = sys.stdin.read() if path == STDOUT else read_text(path, field)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e})") from None


def load_report(path: Path, field: str = "report") -> dict:
    """A stored report, or an error naming the file."""
    from shiftaudit.server.engine.report import READABLE, SCHEMA

    report = load_json(path, field)
    if not isinstance(report, dict) or report.get("schema") not in READABLE:
        raise InputError(f"{path}: not a {SCHEMA} report")
    return report


def model_files(*models: Path) -> dict[Path, str]:
    """The files an audit of local ``models`` reads: each model, its sidecar and its engine manifest."""
    return {path: what for model in models for path, what in ((model, "the model"),
                                                              (sidecar_path(model), "the model's preprocessing sidecar"),
                                                              (manifest_path(model), "the engine's manifest"))}


def end(table: str, wanted: list[Output], views: dict[str, Callable[[], str]], document: dict,
        verdict: Verdict | None, errors: list[str]) -> int:
    """The table (on stderr when a view goes to stdout), the views written, and the exit status: 2 on an
    error (a view not written: the document is then saved at a fallback path), else the verdict's."""
    print(table, file=sys.stderr if any(o.path == STDOUT for o in wanted) else sys.stdout, flush=True)
    failed = outputs.write(wanted, views, document) + errors  # the run and its views are kept whatever else failed
    for line in failed:
        print(f"audit-client: error: {line}", file=sys.stderr)
    if failed:
        return EXIT_USAGE
    return verdict.outcome.exit if verdict else 0
