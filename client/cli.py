"""``audit-client``: the subcommands (`commands/`), and how any failure ends a run: one line on stderr, and
the exit status a CI pipeline acts on. An error that names option fields shows each as its flag."""
from __future__ import annotations

import os
import sys
from dataclasses import replace

from shiftaudit.server.engine.errors import AuditError
from shiftaudit.server.engine.layers import LayerOptions
from shiftaudit.server.engine.options import AuditOptions, RayOptions
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.engine.remedy import RemedyOptions
from shiftaudit.server.engine.runners import BuildOptions, EngineOptions
from shiftaudit.server.flags import flags_of, with_flags

from .args import Command
from .commands.audit import AUDIT
from .commands.common import EXIT_ENGINE, EXIT_USAGE
from .commands.compare import COMPARE_COMMAND, DIFF
from .commands.engine import BUILD, INSPECT
from .commands.layers import LAYERS_COMMAND
from .commands.remediate import REMEDIATE_COMMAND
from .commands.report import GET, LIST, MERGE, REPORT
from .connection import Connection, RemoteError
from .gates import Gates
from .interrupt import EXIT_INTERRUPTED
from .outputs import OutputOptions

# every subcommand, with the line the top-level help gives it
COMMANDS: dict[str, tuple[Command, str]] = {
    "report": (REPORT, "render a stored report again (--html, --markdown, --junit), with gates anew"),
    "get": (GET, "fetch an audit's report from a server by its id"),
    "list": (LIST, "list a server's audits: id, state, model, when, images, verdict"),
    "merge": (MERGE, "join a job array's parts (--shard I/N) into one report"),
    "compare": (COMPARE_COMMAND, "two engines judged on the very frames: is B more sensitive than A?"),
    "diff": (DIFF, "compare two stored reports, pair by pair"),
    "layers": (LAYERS_COMMAND, "where in the network invariance breaks: a profile tensor by tensor"),
    "remediate": (REMEDIATE_COMMAND, "what anti-aliasing would buy this model, and cost, without retraining"),
    "build-engine": (BUILD, "build a TensorRT engine and its manifest on this GPU"),
    "inspect": (INSPECT, "show an engine's manifest and whether this node can run it")}
AUDIT_COMMAND = replace(AUDIT, description=AUDIT.description.format(
    commands="\n".join(f"  {name:<13} {line}" for name, (_, line) in COMMANDS.items())))
# the flags of the fields an error may name: every option group's, and the hand-made flags
FLAGS = flags_of(AuditOptions, Preprocessing, EngineOptions, RayOptions, LayerOptions, Gates, OutputOptions, Connection,
                 BuildOptions, RemedyOptions) | {"labels": "--labels", "class_map": "--class-map", "baseline": "--baseline",
                                  "resume": "--resume"}
# what the caller can fix; every other status means the server could not do the job (exit 3); by name, so
# that commands which never connect load no gRPC
_USAGE_CODES = {"INVALID_ARGUMENT", "NOT_FOUND", "UNAUTHENTICATED", "PERMISSION_DENIED", "OUT_OF_RANGE"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 2 and argv[0] == "--server" and argv[2] in ("get", "list"):  # audit-client --server S get ID
        argv = [argv[2], *argv[:2], *argv[3:]]
    command = COMMANDS[argv[0]][0] if argv and argv[0] in COMMANDS else None
    try:
        return command(argv[1:]) if command else AUDIT_COMMAND(argv)
    except AuditError as e:  # what the caller gave (2), or what the model or device cannot do, a cancel (3)
        return _fail(with_flags(e.marked, FLAGS), EXIT_USAGE if isinstance(e, ValueError) else EXIT_ENGINE)
    except (FileNotFoundError, ValueError) as e:
        return _fail(e, EXIT_USAGE)
    except RemoteError as e:
        if e.code.name == "CANCELLED":  # cancelled before it had a partial report (while queued)
            return _fail(f"server: {e}", EXIT_INTERRUPTED)
        return _fail(f"server: {e}", EXIT_USAGE if e.code.name in _USAGE_CODES else EXIT_ENGINE)
    except OSError as e:
        return _fail(e, EXIT_USAGE)
    except KeyboardInterrupt:  # Ctrl-C where no partial report can be kept (an upload, a sharded or Ray audit)
        return _fail("interrupted: nothing was written", EXIT_INTERRUPTED)
    except Exception as e:  # a bug of ours: still one line, with the way to the traceback
        if os.environ.get("SHIFTAUDIT_DEBUG"):
            raise
        return _fail(f"internal error: {type(e).__name__}: {e} (SHIFTAUDIT_DEBUG=1 shows the traceback)", EXIT_ENGINE)


def _fail(message: object, code: int) -> int:
    print(f"audit-client: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
