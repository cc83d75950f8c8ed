"""Command-line flags derived from the option dataclasses (fields declared with `options.option`: audit,
preprocessing, engine, Ray, layers, TensorRT builds, gates, outputs, connection, server limits): one flag
per field, with the field's help, parser, choices and default, in the argument group the field names;
back from the parsed arguments, only what the user gave (an option left out keeps its default, or the
model's); and the flag of each field, so that an error naming a field (`errors.named`) reads, on a
command line, as the flag typed. Both commands use it: audit-client and audit-server."""
from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from shiftaudit.server.engine.errors import MARK
from shiftaudit.server.engine.options import Option, options_of


class Parser(argparse.ArgumentParser):
    """argparse with a usage error as one line and a hint, not the whole usage (18 lines) before it."""

    def error(self, message: str):  # noqa: ANN201 (argparse's signature)
        self.exit(2, f"{self.prog}: error: {message}\n{self.prog}: see {self.prog} --help\n")


def flag(name: str, opt: Option) -> str:
    """The flag of field ``name``: its own, or --field-name."""
    return opt.flag or "--" + name.replace("_", "-")


def add_flags(ap: argparse.ArgumentParser, cls: type, groups: dict[str, Any] | None = None,
              only: Iterable[str] | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> None:
    """A flag for every option of ``cls`` (or those named in ``only``), in the argument group its option
    names (made on first use in ``groups``); ``overrides``: field -> `Option` attributes (and ``default``)
    of a command whose differ."""
    groups = {} if groups is None else groups
    wanted = None if only is None else set(only)
    for name, opt, default in options_of(cls):
        if wanted is not None and name not in wanted:
            continue
        if overrides and name in overrides:
            changes = dict(overrides[name])
            default = changes.pop("default", default)
            opt = replace(opt, **changes)
        group = groups.get(opt.group) or groups.setdefault(opt.group, ap.add_argument_group(opt.group))
        _add(group, flag(name, opt), name, opt, default)


def _add(group: Any, flag: str, name: str, opt: Option, default: Any) -> None:
    if isinstance(default, bool):
        group.add_argument(flag, dest=name, action="store_true", default=None, help=opt.help.replace("%", "%%"))
        return
    help = f"{opt.help} (default: {opt.default_for_help(default)})".replace("%", "%%")
    kind = {"action": "append"} if opt.repeat else {"nargs": "+"} if opt.many else {}
    group.add_argument(flag, dest=name, type=argument_type(flag, opt.parse), choices=opt.choices,
                       metavar=opt.metavar, help=help, **kind)


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` the command line set (a command may have flags for some only)."""
    return {name: value for name, _, _ in options_of(cls) if (value := getattr(args, name, None)) is not None}


def argument_type(flag: str, parse: Callable[[str], Any] | None) -> Callable[[str], Any] | None:
    """argparse's type: a ValueError becomes argparse's one-line usage error naming the flag."""
    if parse in (None, int, float):  # argparse's own messages name the flag and the value
        return parse

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = flag
    return convert


def flags_of(*classes: type) -> dict[str, str]:
    """Field name -> flag, for every option of ``classes``."""
    return {name: flag(name, opt) for cls in classes for name, opt, _ in options_of(cls)}


def with_flags(marked: str, flags: dict[str, str]) -> str:
    """An error's message (`AuditError.marked`) with each option it names (`errors.named`) written as the
    flag a user typed, where ``flags`` knows it, else as its name."""
    return re.sub(f"{MARK}(\\w+){MARK}", lambda m: flags.get(m[1], m[1]), marked)
