"""The command that audits a report's model again with the very options: every option of its ``config``
written as its flag (`shiftaudit.server.flags` derives the flags from the same fields), and the
preprocessing values that came from options."""
from __future__ import annotations

import shlex

from shiftaudit.server.engine.options import AuditOptions, Numbers, options_of
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.flags import flag


def command_line(report: dict, images: str = "IMAGES") -> str:
    """The audit-client command that audits this report's model again with the very options."""
    args = ["audit-client", "--engine", report["model"]["path"], "--images", images]
    if "labels" in report:
        args += ["--labels", "LABELS"]
    pre = report["model"]["preprocessing"]
    given = [(AuditOptions, report["config"]),
             (Preprocessing, {k: v for k, v in pre.items() if pre.get("origins", {}).get(k) == "options"})]
    for cls, values in given:
        for name, opt, default in options_of(cls):
            if name in values and values[name] is not None:
                args += _flag(flag(name, opt), opt, default, values[name])
    return shlex.join(args)


def _flag(text: str, opt, default, value) -> list[str]:
    """One option's value as the flag(s) that give it."""
    if opt.repeat:
        return [a for v in value for a in (text, str(v))]
    if isinstance(default, bool):
        return [text] if value else []
    if isinstance(opt.parse, Numbers):
        return [text, opt.parse.format(tuple(value))]
    return [text, f"{value:g}" if isinstance(value, float) else str(value)]
