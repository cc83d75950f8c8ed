"""Where audit-client writes what it made, so that an audit is never lost to a typo: every output path is
checked before the audit starts (its folder exists and takes a file, it is no other output's path, and it
is none of the files the audit reads: the model, its sidecar, its manifest, the labels), each is written
atomically (a temporary file beside it, then renamed), and a write that still fails afterwards leaves the
report at a fallback path that the error names. ``-`` writes to standard output (one output at most)."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shiftaudit.server.engine.errors import InputError
from shiftaudit.server.engine.options import named_options, option

STDOUT = Path("-")
GROUP = "output and gates"


@named_options
@dataclass(frozen=True)
class OutputOptions:
    """What a command writes besides its table: the views of its document, each to a file or ``-``
    (standard output; the table then goes to stderr), and how."""

    json: Path | None = option(None, "the report (docs/report.md)", parse=Path, metavar="FILE", group=GROUP,
                               default_text="none")
    markdown: Path | None = option(None, "a Markdown summary: a CI step summary, a pull-request comment", parse=Path,
                                   metavar="FILE", group=GROUP, default_text="none")
    junit: Path | None = option(None, "JUnit XML: a test case per protocol and gate", parse=Path, metavar="FILE",
                                group=GROUP, default_text="none")
    html: Path | None = option(None, "one self-contained page (no network): plots, the most sensitive pairs, what "
                               "was audited", parse=Path, metavar="FILE", group=GROUP, default_text="none")
    no_thumbnails: bool = option(False, "--html without pictures of the images (for data that must not leave the "
                                 "machine)", group=GROUP)
    layers: Path | None = option(None, "a layer profile of the same model (audit-client layers --json), added to "
                                 "--html and --markdown", parse=Path, metavar="PROFILE", group=GROUP,
                                 default_text="none")
    no_progress: bool = option(False, "no progress bar (nor progress lines in a log)", group=GROUP)

    def wanted(self) -> list[Output]:
        """The views asked for, each with where it goes."""
        return [Output(f"--{name}", path, name) for name in VIEWS if (path := getattr(self, name)) is not None]


VIEWS = ("json", "markdown", "junit", "html")


@dataclass(frozen=True)
class Output:
    flag: str  # the option that asked for it, for messages
    path: Path  # STDOUT: standard output
    view: str  # which view: json, markdown, junit, html


def report_json(report: dict) -> str:
    return json.dumps(report, indent=1, allow_nan=False) + "\n"  # strict JSON: NaN never reaches a file


def check(outputs: list[Output], inputs: dict[Path, str]) -> None:
    """Refuse, before any work, an output that could not be written or would overwrite an input
    (``inputs``: path → what it is, e.g. "the model's preprocessing sidecar")."""
    if sum(o.path == STDOUT for o in outputs) > 1:
        raise InputError("only one output can go to standard output ('-')")
    seen: dict[Path, str] = {}
    protected = {p.resolve(): what for p, what in inputs.items()}
    for o in outputs:
        if o.path == STDOUT:
            continue
        where = o.path.resolve()
        if where in seen:
            raise InputError(f"{o.flag} and {seen[where]} name the same file {o.path}")
        seen[where] = o.flag
        if where in protected:
            raise InputError(f"{o.flag} {o.path} is {protected[where]}: choose another name")
        parent = where.parent
        if not parent.is_dir():
            raise InputError(f"{o.flag} {o.path}: folder {parent} does not exist")
        if where.is_dir():
            raise InputError(f"{o.flag} {o.path} is a folder, not a file")
        try:  # os.access says yes to root on a read-only mount: make a file to know
            tempfile.TemporaryFile(dir=parent).close()
        except OSError as e:
            raise InputError(f"{o.flag} {o.path}: cannot write in {parent} ({e.strerror})") from None


def write_atomic(path: Path, text: str) -> None:
    """``text`` at ``path`` whole or not at all: a reader never sees half a report."""
    fd, tmp = tempfile.mkstemp(dir=path.resolve().parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)  # a 0600 report stays 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(outputs: list[Output], views: dict[str, Callable[[], str]], report: dict) -> list[str]:
    """Write every output (``views``: view name -> its text); the errors, one line each. If any failed, the
    report is also saved at a fallback path (the current folder, else the temporary one), which the last
    error names."""
    errors = []
    for o in outputs:
        try:
            text = views[o.view]()
            if o.path == STDOUT:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                write_atomic(o.path, text)
        except OSError as e:
            errors.append(f"{o.flag} {o.path}: {e.strerror or e}")
        except Exception as e:  # a view that cannot be drawn loses neither the report nor the other views
            errors.append(f"{o.flag} {o.path}: could not be made ({type(e).__name__}: {e})")
    if errors:
        name = f"shiftaudit-report-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json"
        for folder in (Path.cwd(), Path(tempfile.gettempdir())):
            try:
                write_atomic(folder / name, report_json(report))
                errors.append(f"the report is saved at {folder / name}")
                break
            except OSError:
                continue
        else:
            errors.append("the report could not be saved anywhere")
    return errors
