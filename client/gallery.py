"""The most sensitive pairs of a report, as the engine saw them: planned again from the report's options,
the image and its digest, rendered on the CPU with the normalisation left out, shown as thumbnails beside
what the model said of them. Read from the report's records alone, so a sharded audit's merged report
shows the same pairs as one audit of everything."""
from __future__ import annotations

import base64
import html
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shiftaudit.server.engine.files import image_files
from shiftaudit.server.engine.images import read
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.protocols import plan
from shiftaudit.server.engine.render.cpu import render_frames

from .plots import short

GALLERY = 12  # pairs in the gallery
THUMB = 112  # pixels, the long side of a thumbnail


@dataclass(frozen=True, eq=False)  # by identity: the gallery keys its frames by pair
class Pair:
    """One of the gallery's pairs: two consecutive frames of a unit and what the model said of them."""

    record: dict
    unit: dict
    first: int  # frames first and first + 1

    @property
    def change(self) -> float:
        p = self.unit["p_top1"]
        return abs(p[self.first + 1] - p[self.first])


def most_sensitive(report: dict, k: int = GALLERY) -> list[Pair]:
    """The ``k`` pairs of consecutive frames with the largest |Δp| (ties: image sha256, protocol, unit,
    frame)."""
    pairs = []
    for rec in report["images"]:
        for u in rec["units"]:
            p = np.abs(np.diff(u["p_top1"]))
            pairs.append(Pair(rec, u, int(np.argmax(p))))
    pairs.sort(key=lambda q: (-q.change, q.record["sha256"], q.unit["protocol"], q.unit["index"], q.first))
    return pairs[:k]


def _frames(report: dict, pairs: list[Pair], images: Path) -> Iterator[tuple[Pair, list[np.ndarray] | str]]:
    """Each pair's two frames as the engine saw them (pixel values, before mean and std), planned again
    from the config, the image's digest and size; or why they cannot be shown."""
    options, files = AuditOptions(**report["config"]), dict(image_files(images))
    for pair in pairs:
        rec, unit = pair.record, pair.unit
        yield pair, unit_frames(options, files, images, rec["image"], unit["protocol"], unit["index"],
                                [pair.first, pair.first + 1], rec["sha256"], unit["placements"])


def unit_frames(options: AuditOptions, files: dict[str, Path], images: Path, name: str, protocol: str, index: int,
                which: list[int], sha256: str | None = None,
                placements: list | None = None) -> list[np.ndarray] | str:
    """Frames ``which`` of unit ``index`` of ``protocol`` on image ``name`` (``files``: name -> path), as the
    engine saw them, planned again from the options and the image; or why they cannot be shown (checked
    against the report's ``sha256`` and ``placements`` where it has them)."""
    path = files.get(name)
    if path is None:
        return f"{name} is not in {images}"
    source = read(path, name)
    if sha256 is not None and source.digest != sha256:
        return f"{name} has changed since the audit"
    units = plan(protocol, source.size, source.digest, options)
    if index >= len(units) or max(which) >= len(units[index].frames):
        return "planned again, the unit is not there (other images or another shiftaudit version?)"
    chosen = [units[index].frames[i] for i in which]
    if placements is not None and [list(p.dst) for p in chosen] != [placements[i] for i in which]:
        return "planned again, the frames differ from the report's (another shiftaudit version?)"
    return [np.clip(f, 0, 255).astype(np.uint8) for f in render_frames(source.pixels, chosen)]


def frame_thumbnails(config: dict, frames: list[tuple[str, str, int, int]], images: Path) -> dict[tuple, str]:
    """A thumbnail (a data: URL) of each (image, protocol, unit, frame), or why it cannot be shown."""
    options, files = AuditOptions(**config), dict(image_files(images))
    out = {}
    for key in frames:
        name, protocol, index, frame = key
        made = unit_frames(options, files, images, name, protocol, index, [frame])
        out[key] = _thumbnail(made[0]) if isinstance(made, list) else made
    return out


def _thumbnail(frame: np.ndarray) -> str:
    h, w = frame.shape[:2]
    scale = THUMB / max(h, w)
    small = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode()


def _card(pair: Pair, frames: list[np.ndarray] | str | None) -> str:
    u, j = pair.unit, pair.first
    names = u.get("top1_names", [str(c) for c in u["top1"]])
    a, b = u["placements"][j], u["placements"][j + 1]
    move = f"moved ({b[0] - a[0]:+g}, {b[1] - a[1]:+g}) px" + (
        f", short side S {min(a[2:4])}→{min(b[2:4])}" if a[2:] != b[2:] else "")
    pictures = (" ".join(f'<img alt="frame {i}" src="{_thumbnail(f)}">' for i, f in zip((j, j + 1), frames))
                if isinstance(frames, list) else f"<em>{html.escape(frames)}</em>" if frames else "")
    return (f'<div class="pair">{pictures}<div><b>{html.escape(short(pair.record["image"], 40))}</b> · '
            f'<code>{u["protocol"]}</code> unit {u["index"]}, frames {j}→{j + 1}<br>'
            f'top-1: {html.escape(names[j])} → {html.escape(names[j + 1])}<br>'
            f'p(first top-1): {u["p_top1"][j]:.3f} → {u["p_top1"][j + 1]:.3f} (|Δp| {pair.change:.3f})<br>{move}'
            "</div></div>")


def gallery(report: dict, images: Path | None, thumbnails: bool) -> str:
    """The pairs as cards; thumbnails only with the images and when not left out."""
    pairs = most_sensitive(report)
    if not pairs:
        return "<p>No pairs.</p>"
    shown = dict(_frames(report, pairs, images)) if thumbnails and images else {}
    why = "" if shown else ("<p>Thumbnails left out (--no-thumbnails)." if not thumbnails else
                           "<p>Thumbnails need the images: give --images DIR (audit-client report REPORT --images DIR).")
    return why + f'<div class="gallery">{"".join(_card(p, shown.get(p)) for p in pairs)}</div>'
