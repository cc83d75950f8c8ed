"""Ground-truth labels for accuracy: a text file of ``image<separator>label`` lines.

The separator is a comma, a tab or spaces; the image is named as the audit names it (its path
relative to the image directory) or by its file name; the label is a class index or a class name.
"""
from __future__ import annotations

import re
from pathlib import Path


def load_labels(path: Path, class_names: list[str] | None) -> dict[str, int]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"labels file {path}: {e.strerror}") from None
    return parse_labels(text, class_names, f"labels file {path}")


def parse_labels(text: str, class_names: list[str] | None, source: str = "labels") -> dict[str, int]:
    index = {n: i for i, n in enumerate(class_names or [])}
    labels: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = re.split(r"\s*[,\t]\s*|\s+", line, maxsplit=1)
        if len(parts) != 2:
            raise ValueError(f"{source}, line {n}: expected 'image,label'")
        name, label = parts
        if label.lstrip("-").isdigit():
            labels[name] = int(label)
        elif label in index:
            labels[name] = index[label]
        else:
            raise ValueError(f"{source}, line {n}: {label!r} is neither a class index nor a class name")
    return labels


def label_for(name: str, labels: dict[str, int]) -> int | None:
    """The label of an image named by its relative path, falling back to its file name."""
    if name in labels:
        return labels[name]
    return labels.get(Path(name).name)
