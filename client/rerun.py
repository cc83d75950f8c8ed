"""The command that runs a report (or a layer profile) again with the very options: every option of its
``config`` written as its flag (`shiftaudit.server.flags` derives the flags from the same fields), and the
preprocessing values that came from options."""
from __future__ import annotations

import shlex
from typing import Any

from shiftaudit.server.engine.layers import LayerOptions
from shiftaudit.server.engine.options import AuditOptions, Numbers, Option, options_of
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.flags import flag


def command_line(doc: dict, images: str = "IMAGES", command: str = "audit-client") -> str:
    """The command that makes ``doc`` (a report, or with ``command`` "audit-client layers" a profile) again."""
    args = [*command.split(), "--engine", doc["model"]["path"], "--images", images]
    if "labels" in doc:
        args += ["--labels", "LABELS"]
    pre = doc["model"]["preprocessing"]
    origins = pre.get("origins", {})
    given = {k: v for k, v in pre.items() if origins.get(k) == "options"}
    if "preset" in origins.values():
        given["preset"] = pre["preset"]
    for cls, values in ((AuditOptions, doc["config"]), (LayerOptions, doc["config"]), (Preprocessing, given)):
        args += as_flags(cls, values)
    return shlex.join(args)


def as_flags(cls: type, values: dict[str, Any]) -> list[str]:
    """The flags that give ``values`` (fields of ``cls``; others are left out)."""
    return [a for name, opt, default in options_of(cls) if values.get(name) is not None
            for a in _flag(flag(name, opt), opt, default, values[name])]


def _flag(text: str, opt: Option, default: Any, value: Any) -> list[str]:
    """One option's value as the flag(s) that give it."""
    if opt.repeat:
        return [a for v in value for a in (text, str(v))]
    if opt.many:
        return [text, *map(str, value)]
    if isinstance(default, bool):
        return [text] if value else []
    if isinstance(opt.parse, Numbers):
        return [text, opt.parse.format(tuple(value))]
    return [text, f"{value:g}" if isinstance(value, float) else str(value)]
