"""Files, in one place: which files below a directory are an audit's images and what they are called,
paths a client names confined to a root the operator chose, and content hashes. No decoding here
(`images.py` decodes): the light client lists, names and shards files with this module alone.

An image's *name* is its path relative to the directory given (a file given alone: its file name).
Names key the labels and the order in which sharded reports merge, so every consumer (the in-process
audit, the upload, the fan-out) takes them from `image_files`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import InputError


class PathError(InputError):
    """A client-supplied path that is not inside its root."""


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def list_images(directory: Path) -> list[Path]:
    """Every regular, non-hidden file below ``directory``, sorted; non-images are found by decoding."""
    if not directory.is_dir():
        raise FileNotFoundError(f"image directory {directory} does not exist")
    files = [p for p in directory.rglob("*")
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)]
    return sorted(files)


def image_files(path: Path) -> list[tuple[str, Path]]:
    """(name, file) of every image below the directory ``path``, or of the file ``path`` itself."""
    if path.is_file():
        return [(path.name, path)]
    return [(str(p.relative_to(path)), p) for p in list_images(path)]


def relative_path(relative: str, what: str, hidden: bool = True) -> PurePosixPath:
    """A path a client gives relative to a root: not empty, not absolute, no '..', no backslash or NUL.
    With ``hidden`` it may be '.', the root itself; without, it must name a file below it and have no
    hidden part (an uploaded file's name)."""
    rel = PurePosixPath(relative)
    if not relative or (not hidden and not rel.parts):
        raise PathError(f"{what} path is empty")
    if rel.is_absolute() or ".." in rel.parts or "\\" in relative or "\x00" in relative \
            or (not hidden and any(p.startswith(".") for p in rel.parts)):
        raise PathError(f"{what} path {relative!r} must be relative, without '..'" + ("" if hidden else
                                                                                       " or hidden parts"))
    return rel


def inside(root: Path, path: Path) -> bool:
    """Whether ``path``, every symlink resolved, is ``root`` or lies below it (``root`` resolved already)."""
    target = path.resolve()
    return target == root or root in target.parents


def resolve_under(root: Path, relative: str, what: str) -> Path:
    """``root / relative`` after checking it stays inside ``root`` once every symlink is resolved."""
    base = root.resolve()
    target = base / relative_path(relative, what)
    if not inside(base, target):
        raise PathError(f"{what} path {relative!r} leads outside the {what} root")
    return target.resolve()


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0 <= index < count): the images whose content's sha256, read as a
    number, is ``index`` modulo ``count``. The one split every scale-out uses (the fan-out over servers,
    job arrays): an image's shard follows from its bytes alone, whatever the listing or the machine."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``I/N``, as a job array's index and size give it; ValueError otherwise."""
        try:
            index, count = (int(v) for v in text.split("/"))
        except ValueError:
            raise ValueError(f"expected I/N (shard I of N, 0 <= I < N), got {text!r}") from None
        if not 0 <= index < count:
            raise ValueError(f"shard {text}: I must lie in 0..N-1 (a job array's index starts at 0)")
        return cls(index, count)

    def holds(self, digest: str) -> bool:
        return shard_of(digest, self.count) == self.index

    def select(self, files: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
        """The (name, file)s of this shard (each file read once, to hash it)."""
        return [(name, path) for name, path in files if self.holds(file_sha256(path))]

    def to_json(self) -> dict:
        return {"index": self.index, "count": self.count}


def shard_of(digest: str, count: int) -> int:
    """The shard of ``count`` that a content hash (hex) falls in."""
    return int(digest[:16], 16) % count


def listing_order(names: list[str]) -> dict[str, int]:
    """Image name -> its place in `image_files`' order (paths sorted part by part), for merging the
    records of shards into the order one audit of every image lists them."""
    return {name: i for i, name in enumerate(sorted(names, key=lambda n: PurePosixPath(n).parts))}
