"""Command-line flags derived from the option dataclasses (`AuditOptions`, `Preprocessing`): one flag
per field, with the field's help, parser, choices and default; back from the parsed arguments, only
what the user gave (an option left out keeps its default, or the model's)."""
from __future__ import annotations

import argparse
import shlex
from dataclasses import replace
from typing import Any

from shiftaudit.server.engine.options import AuditOptions, Numbers, options_of
from shiftaudit.server.engine.preprocessing import Preprocessing


class Parser(argparse.ArgumentParser):
    """argparse with a usage error as one line and a hint, not the whole usage (18 lines) before it."""

    def error(self, message: str):  # noqa: ANN201 (argparse's signature)
        self.exit(2, f"{self.prog}: error: {message}\n{self.prog}: see {self.prog} --help\n")


def add_flags(ap: argparse.ArgumentParser, cls: type, groups: dict[str, Any], only: tuple[str, ...] | None = None,
              defaults: dict[str, tuple[Any, tuple | None]] | None = None) -> None:
    """A flag for every option of ``cls`` (or those named in ``only``), in the argument group its option
    names (made on first use); ``defaults``: name -> (default, choices) of a command whose differ."""
    for name, opt, default in options_of(cls):
        if only is not None and name not in only:
            continue
        if defaults and name in defaults:
            default, choices = defaults[name]
            opt = replace(opt, choices=choices or opt.choices)
        group = groups.get(opt.group) or groups.setdefault(opt.group, ap.add_argument_group(opt.group))
        flag = opt.flag or "--" + name.replace("_", "-")
        help = f"{opt.help} (default: {opt.default_for_help(default)})"
        if isinstance(default, bool):
            group.add_argument(flag, dest=name, action="store_true", default=None, help=opt.help)
        elif opt.repeat:
            group.add_argument(flag, dest=name, action="append", choices=opt.choices, help=help)
        else:
            group.add_argument(flag, dest=name, type=argument_type(flag, opt.parse), choices=opt.choices,
                               metavar=opt.metavar, help=help.replace("%", "%%"))


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` the command line set (a command may have flags for some only)."""
    return {name: value for name, _, _ in options_of(cls) if (value := getattr(args, name, None)) is not None}


def argument_type(flag: str, parse):
    """argparse's type: a ValueError becomes argparse's one-line usage error naming the flag."""
    if parse in (None, int, float):  # argparse's own messages name the flag and the value
        return parse

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = flag
    return convert


def command_line(report: dict, images: str = "IMAGES") -> str:
    """The audit-client command that audits this report's model again with the very options (every
    option of ``config`` as its flag, and the preprocessing values that came from options)."""
    args = ["audit-client", "--engine", report["model"]["path"], "--images", images]
    if "labels" in report:
        args += ["--labels", "LABELS"]
    pre = report["model"]["preprocessing"]
    given = [(AuditOptions, report["config"]),
             (Preprocessing, {k: v for k, v in pre.items() if pre.get("origins", {}).get(k) == "options"})]
    for cls, values in given:
        for name, opt, default in options_of(cls):
            if name not in values or values[name] is None:
                continue
            value, flag = values[name], opt.flag or "--" + name.replace("_", "-")
            if opt.repeat:
                args += [a for v in value for a in (flag, str(v))]
            elif isinstance(default, bool):
                args += [flag] if value else []
            elif isinstance(opt.parse, Numbers):
                args += [flag, opt.parse.format(tuple(value))]
            else:
                args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(args)
