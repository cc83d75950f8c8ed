"""audit-client's argument groups (after Polygraphy's ``tools/args``): each group adds its flags to a
command's parser and parses what the user gave into a typed value; a `Command` lists the groups it needs
and hands its run the typed values by name, so nothing below the command layer sees an
``argparse.Namespace``. Flags of an option group come from its dataclass (`shiftaudit.server.flags`)."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiftaudit.server.engine.files import Shard
from shiftaudit.server.engine.options import RayOptions
from shiftaudit.server.flags import Parser, add_flags, argument_type, given

from .connection import Connection
from .source import Source

GROUPS = ("frames", "model", "remote audit (without --server the audit runs in this process)", "scale-out", "layers",
          "output and gates")  # the order --help lists them in


class Flags:
    """A command's parser and its argument groups, by title, made on first use in the order of `GROUPS`."""

    def __init__(self, prog: str, description: str) -> None:
        self.parser = Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
        self.groups: dict[str, Any] = {title: self.parser.add_argument_group(title) for title in GROUPS}  # empty: unlisted

    def group(self, title: str) -> Any:
        if title not in self.groups:
            self.groups[title] = self.parser.add_argument_group(title)
        return self.groups[title]


class ArgGroup:
    """Flags and how to read them."""

    def add(self, flags: Flags) -> None:
        raise NotImplementedError

    def parse(self, args: argparse.Namespace) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Options(ArgGroup):
    """The flags of an option dataclass (or of the fields in ``only``); ``overrides``: field -> `Option`
    attributes (and ``default``) where this command's differ. Parsed: the dataclass, or with ``raw`` only
    the fields given (preprocessing overrides: a value not given is the sidecar's, not the default)."""

    cls: type
    only: tuple[str, ...] | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: bool = False

    def add(self, flags: Flags) -> None:
        add_flags(flags.parser, self.cls, flags.groups, self.only, self.overrides)

    def parse(self, args: argparse.Namespace) -> Any:
        values = given(args, self.cls)
        if self.raw:
            return values
        defaults = {name: o["default"] for name, o in self.overrides.items() if "default" in o}
        return self.cls(**(defaults | values))


@dataclass(frozen=True)
class Given(ArgGroup):
    """The fields of an option dataclass the command line set (its flags are another group's): what a
    resumed audit checks against the options it was started with."""

    cls: type

    def add(self, flags: Flags) -> None:
        pass

    def parse(self, args: argparse.Namespace) -> dict[str, Any]:
        return given(args, self.cls)


@dataclass(frozen=True)
class Argument(ArgGroup):
    """One hand-made flag or positional (``names``: argparse's), parsed as argparse gives it."""

    names: tuple[str, ...]
    options: dict[str, Any]
    title: str | None = None  # its group; None: the parser's own

    def add(self, flags: Flags) -> None:
        (flags.group(self.title) if self.title else flags.parser).add_argument(*self.names, **self.options)

    def parse(self, args: argparse.Namespace) -> Any:
        name = next((n for n in self.names if n.startswith("--")), self.names[0])  # argparse's dest
        return getattr(args, self.options.get("dest") or name.lstrip("-").replace("-", "_"))


def images(what: str = "directory of images (searched recursively)", uri: bool = False,
           required: bool = False) -> Argument:
    """--images: a local directory, or with ``uri`` also a URI Ray Data reads (kept as text)."""
    return Argument(("--images",), {"type": location if uri else Path, "required": required, "help": what})


def location(text: str) -> Path | str:
    """--images: a local path, or (with --ray) a URI, kept as text (a Path would fold its '//')."""
    return text if "://" in text else Path(text)


def file(flag: str, what: str, metavar: str | None = None, title: str = "model") -> Argument:
    return Argument((flag,), {"type": Path, "metavar": metavar, "help": what}, title)


@dataclass(frozen=True)
class SourceArgs(ArgGroup):
    """Where an audit runs and on which images: in this process, on one server or several, a shard of
    the images (a job array's part), or Ray; parsed as a `Source` whose rules are checked once."""

    shard: bool = True
    ray: bool = True

    def add(self, flags: Flags) -> None:
        images(what="directory of images (searched recursively); uploaded with --server; with --ray also a URI "
                    "Ray Data reads (s3://..., gs://...)" if self.ray else "directory of images (searched "
                    "recursively); uploaded with --server", uri=True).add(flags)
        g = flags.group(GROUPS[2])
        g.add_argument("--server", action="append", help="HOST:PORT of an audit-server; repeat to shard the images "
                       "over several servers (by content) and merge their statistics exactly")
        g.add_argument("--data-path", help="with --server: images under the server's data root, instead of --images")
        Options(Connection).add(flags)
        if self.shard:
            flags.group(GROUPS[3]).add_argument(
                "--shard", type=argument_type("--shard", Shard.parse), metavar="I/N", help="audit only shard I of N "
                "(0 <= I < N) of the images, split by their content as every scale-out splits them: a job array's "
                "part; audit-client merge joins the parts")
        if self.ray:
            Options(RayOptions).add(flags)

    def parse(self, args: argparse.Namespace) -> Source:
        ray = Options(RayOptions).parse(args) if self.ray and args.address is not None else None
        return Source(args.images, tuple(args.server or ()), args.data_path, getattr(args, "shard", None), ray,
                      Options(Connection).parse(args))


@dataclass(frozen=True)
class Command:
    """A subcommand: its groups (by the name its run takes each value under) and what it does."""

    prog: str
    description: str
    groups: dict[str, ArgGroup]
    run: Callable[..., int]

    def parser(self) -> Parser:
        flags = Flags(self.prog, self.description)
        for group in self.groups.values():
            group.add(flags)
        return flags.parser

    def __call__(self, argv: list[str]) -> int:
        args = self.parser().parse_args(argv)
        return self.run(**{name: group.parse(args) for name, group in self.groups.items()})
