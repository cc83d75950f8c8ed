"""Paths a client names, confined to a root the operator chose (no absolute paths, no '..', no
symlinks leading out)."""
from __future__ import annotations

from pathlib import Path, PurePosixPath


class PathError(ValueError):
    """A client-supplied path that is not inside its root."""


def resolve_under(root: Path, relative: str, what: str) -> Path:
    """``root / relative`` after checking it stays inside ``root`` once every symlink is resolved."""
    if not relative:
        raise PathError(f"{what} path is empty")
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or "\\" in relative or "\x00" in relative:
        raise PathError(f"{what} path {relative!r} must be relative to the {what} root, without '..'")
    base = root.resolve()
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        raise PathError(f"{what} path {relative!r} leads outside the {what} root")
    return target
