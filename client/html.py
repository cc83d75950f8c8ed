"""A report as one self-contained page (`page.py`: no script, no request of any kind), rendered from its
`Summary` and the report's records for the figures (`plots.py`) and the gallery (`gallery.py`):

1. the verdict, and per protocol P(top-1 change) and MAC with their intervals and the gates;
2. the paper's Fig. 1: the first frame's top-1 probability along each sequence protocol's sequences;
3. Fig. 6: P(top-1 change) and MAC against the embedded size (size-sweep), interval bands;
4. App. A.4: sensitivity by the first frame's confidence;
5. with labels: accuracy, and the change rate among correctly and wrongly classified first frames;
6. the most sensitive pairs, as the engine saw them;
7. what was audited, with what, the warnings, and the command that runs it again.
A comparison of two engines has a page of its own (`render_comparison`).
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from shiftaudit.server.engine.protocols import REGISTRY

from . import plots
from .gallery import GALLERY, frame_thumbnails, gallery
from .page import document, facts, figure, grid
from .summary import HEAD, PARTS_HEAD, ComparisonSummary, Summary, Verdict, parts, plural


def _verdict(v: Verdict | None) -> str:
    return "" if v is None else f'<p class="{v.outcome.name}">{html.escape(v.text[0].upper() + v.text[1:])}</p>'


def _protocols(summary: Summary) -> str:
    head = "".join(f"<th>{h}</th>" for h in HEAD + (["gate"] if summary.gated else []))
    rows = []
    for r in summary.rows:
        cells = f'<td><code>{r.protocol}</code></td>' + "".join(f'<td class="n">{c}</td>' for c in r.cells[1:])
        if r.gate:
            cells += f'<td class="{r.gate.outcome.name}">{html.escape(r.gate.detail)}</td>'
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _figures(report: dict, summary: Summary) -> list[str]:
    """The paper's figures this report has data for."""
    body = ["<h2>Sensitivity by protocol</h2>", _protocols(summary),
            figure(plots.protocols(report, summary.checks), "Each protocol's P(top-1 change) (the fraction of compared "
                   "frame pairs whose top-1 class differs) and MAC (mean absolute change of the first frame's top-1 "
                   "probability), with 95 % intervals" + ("; dashed: the gates." if summary.checks else "."))]
    for protocol in report["protocols"]:  # a protocol this version does not know is drawn as a pair protocol
        axis = REGISTRY[protocol].axis if protocol in REGISTRY else None
        svg = plots.sequences(report, protocol, axis) if axis else None
        if svg:
            body += [f"<h2>Along the {protocol} sequences (the paper's Fig. 1)</h2>",
                     figure(svg, f"The first frame's top-1 probability along each {protocol} sequence (the "
                            f"{plots.SEQUENCES} that change most); red: frames whose top-1 differs from the frame "
                            "before.")]
    for protocol, p in report["protocols"].items():
        if p.get("by_size"):
            counts = plots.images_by_size(report, protocol)
            few = [s for s, n in counts.items() if 0 < n < plots.FEW_IMAGES]
            body += ["<h2>Against the embedded size (the paper's Fig. 6)</h2>",
                     figure(plots.sizes(p["by_size"], counts), f"{protocol}: P(top-1 change) and MAC of a one-pixel shift at "
                            "each embedded size, with 95 % bands" + (
                                f". Grey, with their number of images: sizes measured on fewer than "
                                f"{plots.FEW_IMAGES} images ({len(few)} of {len(p['by_size'])}: only images large "
                                "enough for a size are embedded at it), whose intervals span most of 0–1 and say "
                                "little; the band leaves them out." if few else "."))]
    body += ["<h2>By the first frame's confidence (the paper's App. A.4)</h2>",
             figure(plots.confidence(report), "P(top-1 change) per bin of the first frame's top-1 probability, with "
                    "95 % intervals; bins with no pairs are left out.")]
    if summary.accuracy:
        body += ["<h2>With the labels</h2>", figure(plots.labelled(report), "Accuracy of the first frames, and "
                                                    "P(top-1 change) among units whose first frame was classified "
                                                    "correctly and wrongly.")]
    return body


def render(report: dict, summary: Summary, images: Path | None = None, thumbnails: bool = True,
           extra: Sequence[str] = (), command: str | None = None) -> str:
    """The page; ``extra``: further sections (a layer profile's, `layers.section`) before what was audited;
    ``command``: the one that makes the page again, when it is more than the report's (`summary.command`)."""
    command = command or summary.command
    body = [f"<h1>shiftaudit: <code>{html.escape(summary.model)}</code></h1>", _verdict(summary.verdict),
            f"<p>{html.escape(summary.run)}.</p>", *(f'<p class="warn">{html.escape(w)}.</p>' for w in summary.warnings),
            *_figures(report, summary),
            "<h2>The most sensitive pairs</h2>",
            f"<p>The {GALLERY} pairs of consecutive frames whose first-frame top-1 probability changed most, as the "
            "engine saw them (before mean and std).</p>", gallery(report, images, thumbnails), *extra,
            "<h2>What was audited</h2>",
            *(f"<p>{html.escape(n[0].upper() + n[1:])}.</p>" for n in (summary.accuracy, summary.target, summary.labels,
                                                                         summary.ray, summary.skipped) if n),
            *_parts(report), facts(summary.audited), "<h2>Run it again</h2>", f"<pre>{html.escape(command)}</pre>"]
    return document(f"shiftaudit: {summary.model}", body)


def _parts(report: dict) -> list[str]:
    """A merged report's parts, each with where it ran and its time."""
    rows = parts(report)
    if not rows:
        return []
    return [f"<p>Merged from {plural(len(rows), 'part')}, its statistics added exactly:</p>",
            grid(PARTS_HEAD, rows, {1, 2, 3})]


def disagreeing(comparison: dict, summary: ComparisonSummary, images: Path | None, thumbnails: bool) -> str:
    """The frames the engines disagree on, each with a picture of it when the images are at hand."""
    pictures = frame_thumbnails(comparison["config"], [(d["image"], d["protocol"], d["index"], d["frame"])
                                                       for d in summary.disagreements], images) \
        if images and thumbnails else {}
    rows = []
    for d in summary.disagreements:
        shown = pictures.get((d["image"], d["protocol"], d["index"], d["frame"]))
        picture = (f'<img alt="frame" src="{shown}">' if shown and shown.startswith("data:")
                   else f"<em>{html.escape(shown)}</em>" if shown else "")
        cells = [d["image"], f"{d['protocol']} unit {d['index']}, frame {d['frame']}", str(d.get("a_name", d["a"])),
                 str(d.get("b_name", d["b"]))]
        rows.append(f"<tr><td>{picture}</td>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    why = "" if pictures else ("<p>Pictures left out (--no-thumbnails).</p>" if not thumbnails else
                               "<p>Pictures of the frames need the images (--images DIR).</p>")
    return why + "<table><tr><th></th><th>image</th><th>frame</th><th>A</th><th>B</th></tr>" + "".join(rows) + "</table>"


def render_comparison(comparison: dict, summary: ComparisonSummary, images: Path | None = None,
                      thumbnails: bool = True) -> str:
    """A comparison of two engines (``shiftaudit.compare/v1``) as a page of its own; the frames they
    disagree on are pictured when ``images`` are at hand."""
    a, b = summary.a, summary.b
    body = [f"<h1>shiftaudit: <code>{html.escape(b['path'])}</code> against <code>{html.escape(a['path'])}</code></h1>",
            _verdict(summary.verdict), *(f'<p class="warn">{html.escape(w)}.</p>' for w in summary.warnings),
            f"<p>A (the baseline): <code>{html.escape(a['path'])}</code>, sha256 "
            f"<code>{a['sha256']}</code>; B: <code>{html.escape(b['path'])}</code>, sha256 <code>{b['sha256']}</code>. "
            f"Both judged on the identical frames of {plural(summary.images, 'image')}.</p>",
            "<h2>Paired, protocol by protocol</h2>", grid(summary.head, summary.rows, set(range(1, 8))),
            figure(plots.increases(comparison, summary.checks), "The increase B − A of P(top-1 change) and of MAC, "
                   "pair by pair on identical frames; 95 % intervals with the images as clusters"
                   + ("; dashed: the gates." if summary.checks else ".")),
            "<h2>Frames the engines disagree on</h2>",
            disagreeing(comparison, summary, images, thumbnails) if summary.disagreements
            else "<p>None: the engines agree on every frame.</p>",
            "<h2>What the numbers are</h2>", "<p>" + html.escape(
                "Each protocol's pairs are judged by both engines on identical frames. P A and P B: each engine's "
                "P(top-1 change), the fraction of pairs whose top-1 class differs between the two frames. The "
                "increase B − A: their paired difference, with a 95 % interval that takes the image as the unit "
                "(an image's pairs are not independent); McNemar p: the exact test of the pairs where only one "
                "engine changed its answer. MAC increase: the same for the mean absolute change of the first "
                "frame's top-1 probability. Agreement: the fraction of frames on which both engines give the same "
                "top-1 class. A gate fails when the whole interval of an increase lies above its limit, passes "
                "when it lies at or below it, and is inconclusive when it straddles it.") + "</p>"]
    return document(f"shiftaudit: {b['path']} against {a['path']}", body)
