"""Ground-truth labels for accuracy: a text file of ``image<separator>label`` lines.

The separator is a comma, a tab or spaces; the image is named as the audit names it (its path
relative to the image directory) or by its file name; the label is a class index or a class name.
A first line whose label is neither (``image,label``) is a header; ``#`` starts a comment line.
What cannot be meant is an error naming the line: a label that is no class, an index outside the
class names, one image given two labels. What may be an oversight is counted in the report's
``labels`` (`Labels.summary`): names that match no audited image, repeated lines, images left
without a label, and indices beyond the model's output when no class names tell its size before.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, named

SHOWN = 5  # names a summary lists of each kind


@dataclass
class Labels:
    by_image: dict[str, int] = field(default_factory=dict)
    repeated: list[str] = field(default_factory=list)  # images named again with the same label

    def __bool__(self) -> bool:
        return bool(self.by_image)

    def label_for(self, name: str) -> int | None:
        """The label of an image named by its relative path, falling back to its file name."""
        if name in self.by_image:
            return self.by_image[name]
        return self.by_image.get(Path(name).name)

    def summary(self, images: list[str], classes: int | None, listed: list[str] | None = None) -> dict:
        """How the labels met the audit's ``images`` (every name listed, skipped ones included) and a
        model of ``classes`` outputs: counts, with the first few names of each kind. ``listed``: every
        image of the directory when the audit takes a shard of it, so that a label of another shard's
        image is not taken for a name that matches nothing."""
        known = images if listed is None else listed
        names = set(known) | {Path(n).name for n in known}
        unknown = [n for n in self.by_image if n not in names]
        labelled = [n for n in images if self.label_for(n) is not None]
        beyond = [n for n, c in self.by_image.items() if classes is not None and c >= classes]
        return {"given": len(self.by_image), "labelled_images": len(labelled),
                "unlabelled_images": few([n for n in images if self.label_for(n) is None]),
                "unknown_names": few(unknown), "repeated_lines": few(self.repeated),
                "beyond_outputs": few(beyond)}


def few(names: list[str]) -> dict:
    """A count of names, with the first few."""
    return {"count": len(names), "first": names[:SHOWN]}


def merge_labels(shards: list[dict], order: dict[str, int], unknown: dict) -> dict:
    """The labels summary of the whole audit from its shards' (each had the whole labels text but only
    its shard's images): what depends on the text alone is the same in every shard; the images' counts
    add up, and their first few are the first in the audit's ``order`` (each shard lists its images in
    that order, so those are among its first few); ``unknown``: the names that match no image at all
    (`few`), found where every image name is known."""
    merged = dict(shards[0])
    merged["labelled_images"] = sum(s["labelled_images"] for s in shards)
    unlabelled = sorted((n for s in shards for n in s["unlabelled_images"]["first"]), key=order.__getitem__)
    merged["unlabelled_images"] = {"count": sum(s["unlabelled_images"]["count"] for s in shards),
                                   "first": unlabelled[:SHOWN]}
    merged["unknown_names"] = unknown
    return merged


def load_labels(path: Path, class_names: list[str] | None, images: Iterable[str] | None = None) -> Labels:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{named('labels')} {path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise InputError(f"{named('labels')} {path}: {e.strerror}") from None
    return parse_labels(text, class_names, f"{named('labels')} {path}", images)


def label_lines(text: str) -> list[tuple[int, str, str]]:
    """(line number, image, label) of every line that is not blank or a comment, the header included."""
    lines = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        # a comma or tab separates when there is one (names may have spaces); else the first spaces do
        parts = re.split(r"\s*[,\t]\s*", line, maxsplit=1) if re.search(r"[,\t]", line) else line.split(None, 1)
        if len(parts) != 2:
            raise InputError(f"line {n}: expected 'image,label', got {line[:80]!r}")
        lines.append((n, *parts))
    return lines


def unknown_names(text: str, images: list[str]) -> list[str]:
    """The image names of the labels that match none of ``images`` (the first line left out when its
    label is not an index: a header, or a class name, which this light check cannot tell apart)."""
    names = set(images) | {Path(n).name for n in images}
    lines = label_lines(text)
    return list(dict.fromkeys(name for i, (_, name, label) in enumerate(lines)
                              if name not in names and not (i == 0 and not label.lstrip("-").isdigit())))


def parse_labels(text: str, class_names: list[str] | None, source: str = "labels",
                 images: Iterable[str] | None = None) -> Labels:
    """The labels of ``text`` (``image,label`` lines: a class index, or a class name of ``class_names``).
    The first line is a header, and skipped, only when its label is no class and its image names none of
    ``images`` (the audit's image names; by file name too): a typo in the first label is an error, not a
    header."""
    index = {n: i for i, n in enumerate(class_names or [])}
    known = None if images is None else {m for n in images for m in (n, Path(n).name)}
    labels = Labels()
    try:
        lines = label_lines(text)
    except InputError as e:
        raise InputError(f"{source}, {e}") from None
    for i, (n, name, label) in enumerate(lines):
        if label.lstrip("-").isdigit():
            value = int(label)
            if value < 0:
                raise InputError(f"{source}, line {n}: class index {value} is negative")
            if class_names and value >= len(class_names):
                raise InputError(f"{source}, line {n}: class index {value} is beyond the {len(class_names)} class "
                                 "names")
        elif label in index:
            value = index[label]
        elif i == 0 and (known is None or name not in known):  # a header line: image,label
            continue
        else:
            raise InputError(f"{source}, line {n}: {label[:80]!r} is neither a class index nor a class name"
                             + (f" (this line names the image {name[:80]!r}: it is no header)" if i == 0 else ""))
        if name in labels.by_image:
            if labels.by_image[name] != value:
                raise InputError(f"{source}, line {n}: {name[:80]!r} is labelled again, as {label[:80]!r}, "
                                 f"not {labels.by_image[name]} as before")
            labels.repeated.append(name)
        labels.by_image[name] = value
    if not labels:
        raise InputError(f"{source}: no 'image,label' lines")
    return labels
