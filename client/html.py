"""The report as one self-contained HTML page: no script, no request of any kind (a Content-Security-Policy
meta tag allows only inline styles and data: images), plots drawn by matplotlib as inline SVG, each with
axes, units and 95 % intervals:

1. per protocol, P(top-1 change) and MAC with their intervals and the gates;
2. the paper's Fig. 1: the first frame's top-1 probability along translate-sweep and scale-sweep
   sequences, flips marked;
3. Fig. 6: P(top-1 change) and MAC against the embedded size (size-sweep), interval bands;
4. App. A.4: sensitivity by the first frame's confidence;
5. with labels: accuracy, and the change rate among correctly and wrongly classified first frames;
6. a gallery of the most sensitive pairs, as the engine saw them (planned again from the report, the
   image and the seed, rendered on the CPU, normalisation undone);
7. what was audited, with what, where each preprocessing value came from, and the command that runs it
   again.
"""
from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend)

from shiftaudit.server.engine.files import image_files  # noqa: E402
from shiftaudit.server.engine.images import read  # noqa: E402
from shiftaudit.server.engine.options import AuditOptions  # noqa: E402
from shiftaudit.server.engine.protocols import plan  # noqa: E402
from shiftaudit.server.engine.render.cpu import render_frames  # noqa: E402

from .flags import command_line  # noqa: E402
from .gates import GATED, NAMES, Check  # noqa: E402
from .table import plural  # noqa: E402

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
GALLERY = 12  # pairs in the gallery
SEQUENCES = 12  # sequences drawn in Fig. 1's small multiples, per protocol
THUMB = 112  # pixels, the long side of a gallery thumbnail
STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .7em;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.fail{color:#b00020;font-weight:600}.pass{color:#1b5e20}
.warn{background:#fff4e5;border-left:4px solid #f0a000;padding:.5em 1em}code,pre{font-size:.92em}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:1em}
.pair{border:1px solid #ddd;padding:.5em;font-size:.85em}.pair img{width:48%;image-rendering:pixelated}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}.layers td{white-space:nowrap}"""


def _svg(fig: plt.Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _errorbar(ax: plt.Axes, at, estimates: list[dict], horizontal: bool = False, **style) -> None:
    """Points with their 95 % intervals at positions ``at`` (on y when ``horizontal``); estimates with
    nothing measured are left out."""
    pts = [(a, e) for a, e in zip(at, estimates) if e["value"] is not None]
    if not pts:
        return
    where, es = zip(*pts)
    v = np.array([e["value"] for e in es])
    bars = [v - np.array([e["ci95"][0] for e in es]), np.array([e["ci95"][1] for e in es]) - v]
    if horizontal:
        ax.errorbar(v, where, xerr=bars, fmt="o", capsize=3, **style)
    else:
        ax.errorbar(where, v, yerr=bars, fmt="o", capsize=3, **style)


def _protocols_plot(report: dict, found: list[Check] | None) -> str:
    names = list(report["protocols"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.5 * len(names) + 1.6), sharey=True)
    y = np.arange(len(names))
    for ax, metric in zip(axes, GATED):
        ests = [report["protocols"][n][metric] for n in names]
        _errorbar(ax, y, ests, horizontal=True, color="#1f4e79")
        limits = {c.limit for c in found or [] if c.metric == metric}
        for limit in limits:
            ax.axvline(limit, color="#b00020", linestyle="--", linewidth=1)
        # P(top-1 change) on [0, 1]; MAC, small on the models of interest, up to what the intervals reach
        reach = max([e["ci95"][1] for e in ests if e["value"] is not None] + list(limits) + [0.05])
        ax.set_xlim(0, 1 if metric == "p_top1_change" else min(1.0, 1.15 * reach))
        ax.set_xlabel(f"{NAMES[metric]} (fraction; 95 % interval)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    return _svg(fig)


def _sequences_plot(report: dict, protocol: str) -> str | None:
    """Fig. 1: p(first frame's top-1) along each sequence of ``protocol``, the most changing first."""
    units = [(rec, u) for rec in report["images"] for u in rec["units"] if u["protocol"] == protocol]
    if not units:
        return None
    units.sort(key=lambda ru: (-ru[1]["changes"], -_jump(ru[1]["p_top1"]), ru[0]["sha256"], ru[1]["index"]))
    shown = units[:SEQUENCES]
    cols = min(4, len(shown))
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.7 * cols, 2.2 * rows), squeeze=False, sharey=True,
                             layout="constrained")
    cfg = report["config"]
    for ax, (rec, u) in zip(axes.flat, shown):
        p = np.array(u["p_top1"])
        if protocol == "translate-sweep":
            x, unit = np.arange(len(p)) * cfg["sweep_step"], "shift (pixels)"
        else:
            x, unit = u.get("size", cfg["size"]) + np.arange(len(p)), "embedded size (pixels)"
        ax.plot(x, p, "-", color="#1f4e79", linewidth=1.2)
        top = np.array(u["top1"])
        flips = np.nonzero(top[1:] != top[:-1])[0] + 1
        ax.plot(x[flips], p[flips], "o", color="#b00020", markersize=4, label="top-1 changes")
        ax.set_title(_short(rec["image"]), fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_xlabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(shown):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("p(first top-1)", fontsize=8)
    return _svg(fig)


def _size_plot(by_size: list[dict]) -> str:
    """Fig. 6: sensitivity against the embedded size, with the intervals as bands."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    sizes = np.array([s["size"] for s in by_size])
    for metric, color in zip(GATED, ("#1f4e79", "#e07b00")):
        rows = [(s["size"], s[metric]) for s in by_size if s[metric]["value"] is not None]
        if not rows:
            continue
        x = np.array([r[0] for r in rows])
        v = np.array([r[1]["value"] for r in rows])
        ax.fill_between(x, [r[1]["ci95"][0] for r in rows], [r[1]["ci95"][1] for r in rows], color=color, alpha=0.2)
        ax.plot(x, v, "o-", color=color, label=f"{NAMES[metric]} (95 % band)")
    ax.set_xlim(sizes.min() - 2, sizes.max() + 2)
    ax.set_ylim(0, 1)
    ax.set_xlabel("embedded size S (pixels, short side)")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _svg(fig)


def _confidence_plot(report: dict) -> str:
    """App. A.4: P(top-1 change) by the first frame's top-1 probability, per protocol."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    names = list(report["protocols"])
    for i, name in enumerate(names):
        bins = report["protocols"][name]["by_confidence"]
        centres = [(b["confidence"][0] + b["confidence"][1]) / 2 + (i - (len(names) - 1) / 2) * 0.02 for b in bins]
        _errorbar(ax, centres, [b["p_top1_change"] for b in bins], label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel("first frame's top-1 probability (bins of 0.2)")
    ax.set_ylabel("P(top-1 change), 95 % interval")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(alpha=0.3)
    return _svg(fig)


def _labels_plot(report: dict) -> str:
    """Accuracy, and the change rate among correctly and wrongly classified first frames."""
    names = [n for n, p in report["protocols"].items() if "accuracy" in p]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.4))
    y = np.arange(len(names))
    for offset, (what, color, pick) in enumerate((
            ("accuracy (first frames)", "#1b5e20", lambda p: p["accuracy"]["first_frame"]),
            ("P(top-1 change) | first correct", "#1f4e79", lambda p: p["by_first_frame"]["correct"]["p_top1_change"]),
            ("P(top-1 change) | first wrong", "#b00020", lambda p: p["by_first_frame"]["wrong"]["p_top1_change"]))):
        ests = [pick(report["protocols"][n]) for n in names]
        _errorbar(ax, y + (offset - 1) * 0.22, ests, horizontal=True, color=color, label=what)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction, 95 % interval")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)


def _jump(p: list[float]) -> float:
    return float(np.max(np.abs(np.diff(p)))) if len(p) > 1 else 0.0


def _short(name: str, n: int = 28) -> str:
    return name if len(name) <= n else "…" + name[-n + 1:]


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
    frame), from the report's records alone: a sharded audit's merged report gives the same pairs as one
    audit of everything."""
    pairs = []
    for rec in report["images"]:
        for u in rec["units"]:
            p = np.abs(np.diff(u["p_top1"]))
            j = int(np.argmax(p))
            pairs.append(Pair(rec, u, j))
    pairs.sort(key=lambda q: (-q.change, q.record["sha256"], q.unit["protocol"], q.unit["index"], q.first))
    return pairs[:k]


def _frames(report: dict, pairs: list[Pair], images: Path) -> Iterator[tuple[Pair, list[np.ndarray] | str]]:
    """Each pair's two frames as the engine saw them (pixel values, before mean and std), planned again
    from the config, the image's digest and size; or why they cannot be shown."""
    options = AuditOptions(**report["config"])
    files = dict(image_files(images))
    for pair in pairs:
        rec, unit = pair.record, pair.unit
        path = files.get(rec["image"])
        if path is None:
            yield pair, f"{rec['image']} is not in {images}"
            continue
        source = read(path, rec["image"])
        if source.digest != rec["sha256"]:
            yield pair, f"{rec['image']} has changed since the audit"
            continue
        units = plan(unit["protocol"], source.size, source.digest, options)
        placements = units[unit["index"]].frames[pair.first:pair.first + 2]
        if [list(p.dst) for p in placements] != unit["placements"][pair.first:pair.first + 2]:
            yield pair, "planned again, the frames differ from the report's (another shiftaudit version?)"
            continue
        yield pair, [np.clip(f, 0, 255).astype(np.uint8) for f in render_frames(source.pixels, placements)]


def _thumbnail(frame: np.ndarray) -> str:
    h, w = frame.shape[:2]
    scale = THUMB / max(h, w)
    small = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode()


def _gallery(report: dict, images: Path | None, thumbnails: bool) -> str:
    pairs = most_sensitive(report)
    if not pairs:
        return "<p>No pairs.</p>"
    shown = dict(_frames(report, pairs, images)) if thumbnails and images else {}
    why = "" if shown else ("<p>Thumbnails left out (--no-thumbnails)." if not thumbnails else
                           "<p>Thumbnails need the images: give --images DIR (audit-client report REPORT --images DIR).")
    cards = []
    for pair in pairs:
        u, j = pair.unit, pair.first
        names = u.get("top1_names", [str(c) for c in u["top1"]])
        a, b = u["placements"][j], u["placements"][j + 1]
        move = f"moved ({b[0] - a[0]:+g}, {b[1] - a[1]:+g}) px" + (f", size {a[2]}→{b[2]}" if a[2:] != b[2:] else "")
        frames = shown.get(pair)
        pictures = (" ".join(f'<img alt="frame {i}" src="{_thumbnail(f)}">' for i, f in zip((j, j + 1), frames))
                    if isinstance(frames, list) else f"<em>{html.escape(frames)}</em>" if frames else "")
        cards.append(
            f'<div class="pair">{pictures}<div><b>{html.escape(_short(pair.record["image"], 40))}</b> · '
            f'<code>{u["protocol"]}</code> unit {u["index"]}, frames {j}→{j + 1}<br>'
            f'top-1: {html.escape(names[j])} → {html.escape(names[j + 1])}<br>'
            f'p(first top-1): {u["p_top1"][j]:.3f} → {u["p_top1"][j + 1]:.3f} (|Δp| {pair.change:.3f})<br>{move}</div></div>')
    return why + f'<div class="gallery">{"".join(cards)}</div>'


def _rows(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _metric(m: dict) -> str:
    return "–" if m["value"] is None else f"{m['value']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"


def render(report: dict, found: list[Check] | None, images: Path | None = None, thumbnails: bool = True,
           extra: Sequence[str] = ()) -> str:
    """The page; ``extra``: further sections (a layer profile's, `layers.section`) before what was audited."""
    m, pre, cfg = report["model"], report["model"]["preprocessing"], report["config"]
    failed = [c for c in found or [] if c.failed]
    verdict = ("" if found is None else f'<p class="fail">{len(failed)} of {len(found)} gates failed</p>' if failed
               else f'<p class="pass">All {len(found)} gates passed</p>')
    rows = []
    for name, p in report["protocols"].items():
        gate = [c for c in found or [] if c.protocol == name]
        cell = ("" if found is None else f'<td class="fail">{html.escape("; ".join(c.reason for c in gate if c.failed))}</td>'
                if any(c.failed for c in gate) else '<td class="pass">pass</td>')
        rows.append(f'<tr><td><code>{name}</code></td><td class="n">{p["pairs"]}</td><td class="n">'
                    f'{_metric(p["p_top1_change"])}</td><td class="n">{_metric(p["mac"])}</td>{cell}</tr>')
    head = "<tr><th>protocol</th><th>pairs</th><th>P(top-1 change) [95% CI]</th><th>MAC [95% CI]</th>" + \
           ("<th>gate</th>" if found is not None else "") + "</tr>"
    body = [f"<h1>shiftaudit: <code>{html.escape(m['path'])}</code></h1>", verdict,
            f"<p>{plural(len(report['images']), 'image')}, {plural(report['frames'], 'frame')} in "
            f"{report['seconds']:.1f} s; rendered on {html.escape(report['device']['render'])}, inferred on "
            f"{html.escape(report['device']['inference'])}.</p>",
            "<h2>Sensitivity by protocol</h2>", f"<table>{head}{''.join(rows)}</table>",
            _figure(_protocols_plot(report, found), "Each protocol's P(top-1 change) (the fraction of compared "
                    "frame pairs whose top-1 class differs) and MAC (mean absolute change of the first frame's "
                    "top-1 probability), with 95 % intervals; dashed: the gates.")]
    for protocol in ("translate-sweep", "scale-sweep"):
        svg = _sequences_plot(report, protocol) if protocol in report["protocols"] else None
        if svg:
            body += [f"<h2>Along the {protocol} sequences (the paper's Fig. 1)</h2>",
                     _figure(svg, f"The first frame's top-1 probability along each {protocol} sequence (the "
                             f"{SEQUENCES} that change most); red: frames whose top-1 differs from the frame before.")]
    by_size = report["protocols"].get("size-sweep", {}).get("by_size", [])
    if by_size:
        body += ["<h2>Against the embedded size (the paper's Fig. 6)</h2>",
                 _figure(_size_plot(by_size), "size-sweep: P(top-1 change) and MAC of a one-pixel shift at each "
                         "embedded size, with 95 % bands.")]
    body += ["<h2>By the first frame's confidence (the paper's App. A.4)</h2>",
             _figure(_confidence_plot(report), "P(top-1 change) per bin of the first frame's top-1 probability, "
                     "with 95 % intervals; bins with no pairs are left out.")]
    if any("accuracy" in p for p in report["protocols"].values()):
        body += ["<h2>With the labels</h2>", _figure(_labels_plot(report), "Accuracy of the first frames, and "
                 "P(top-1 change) among units whose first frame was classified correctly and wrongly.")]
    body += ["<h2>The most sensitive pairs</h2>",
             f"<p>The {GALLERY} pairs of consecutive frames whose first-frame top-1 probability changed most, "
             "as the engine saw them (before mean and std).</p>", _gallery(report, images, thumbnails), *extra]
    origins = pre.get("origins", {})
    defaults = [k for k, o in origins.items() if o == "default"]
    warning = (f'<p class="warn">{", ".join(defaults)} not given (neither sidecar nor flag): defaults used '
               "(ImageNet's). If the model was trained otherwise, these numbers are not its own.</p>") if defaults else ""
    inp = m["input"]
    body += ["<h2>What was audited</h2>", _rows([
        ("model", f"<code>{html.escape(m['path'])}</code>, sha256 <code>{m['sha256']}</code>"),
        ("input", html.escape(f"tensor '{inp['name']}', {inp['layout']} {inp['height'] or '?'}×{inp['width'] or '?'} "
                              f"{inp['dtype']}, batch {inp['batch'] or 'dynamic'}")),
        ("runner", html.escape(f"{m['runner']} ({', '.join(m.get('providers', []))}); output read as "
                               f"{m['output_kind']}")),
        ("preprocessing", html.escape(f"mean {pre['mean']}, std {pre['std']} on 0–{pre['pixel_range']:g} "
                                      f"{pre['channel_order']}, output {pre['output']}")),
        ("came from", html.escape(", ".join(f"{k}: {o}" for k, o in origins.items()) + f" (sidecar: {pre['source']})")),
        ("config", "<code>" + html.escape(", ".join(f"{k}={v}" for k, v in cfg.items())) + "</code>"),
        ("tools", html.escape(", ".join(f"{k} {v}" for k, v in report["tool"].items() if v and k != "name"))),
    ]), warning]
    if report["skipped"]:
        body.append(f"<p>Skipped ({len(report['skipped'])}): "
                    + html.escape("; ".join(s["reason"] for s in report["skipped"][:10]))
                    + (" …" if len(report["skipped"]) > 10 else "") + "</p>")
    body += ["<h2>Run it again</h2>", f"<pre>{html.escape(command_line(report))}</pre>"]
    return _page(f"shiftaudit: {m['path']}", body)


def _page(title: str, body: list[str]) -> str:
    """The page around ``body``: its policy forbids every request; styles are inline."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def _increase_plot(comparison: dict, found: list[Check]) -> str:
    """Per protocol, the paired increase B − A of P(top-1 change) and of MAC, image-clustered 95 %
    intervals; dashed: the gates."""
    names = list(comparison["protocols"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.5 * len(names) + 1.6), sharey=True)
    y = np.arange(len(names))
    for ax, metric in zip(axes, ("p_top1_change_increase", "mac_increase")):
        ests = [comparison["protocols"][n][metric] for n in names]
        _errorbar(ax, y, ests, horizontal=True, color="#1f4e79")
        ax.axvline(0, color="#555", linewidth=1)
        for limit in {c.limit for c in found if c.metric == metric}:
            ax.axvline(limit, color="#b00020", linestyle="--", linewidth=1)
        ax.set_xlabel(f"{'P(top-1 change)' if metric.startswith('p_') else 'MAC'}: B − A")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    return _svg(fig)


def render_comparison(comparison: dict, found: list[Check]) -> str:
    """A comparison of two engines (``shiftaudit.compare/v1``) as a page of its own."""
    a, b = comparison["a"]["model"], comparison["b"]["model"]
    failed = [c for c in found if c.failed]
    verdict = ("" if not found else f'<p class="fail">{len(failed)} of {len(found)} gates failed</p>' if failed
               else f'<p class="pass">All {len(found)} gates passed</p>')
    from .comparison import rows

    table = rows(comparison, found)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table[0])
    body_rows = "".join("<tr>" + "".join(f'<td class="{"n" if 0 < i < 8 else ""}">{html.escape(c)}</td>'
                                         for i, c in enumerate(r)) + "</tr>" for r in table[1:])
    disagreements = "".join(
        f"<tr><td>{html.escape(d['image'])}</td><td><code>{d['protocol']}</code> unit {d['index']}, frame {d['frame']}</td>"
        f"<td>{html.escape(str(d.get('a_name', d['a'])))}</td><td>{html.escape(str(d.get('b_name', d['b'])))}</td></tr>"
        for d in comparison["disagreements"])
    body = [f"<h1>shiftaudit: <code>{html.escape(b['path'])}</code> against <code>{html.escape(a['path'])}</code></h1>",
            verdict, f"<p>A (the baseline): <code>{html.escape(a['path'])}</code>, sha256 <code>{a['sha256']}</code>; "
            f"B: <code>{html.escape(b['path'])}</code>, sha256 <code>{b['sha256']}</code>. Both judged on the "
            f"identical frames of {comparison['images']} images.</p>",
            "<h2>Paired, protocol by protocol</h2>", f"<table><tr>{head}</tr>{body_rows}</table>",
            _figure(_increase_plot(comparison, found), "The increase B − A of P(top-1 change) and of MAC, pair by "
                    "pair on identical frames; 95 % intervals with the images as clusters; dashed: the gates."),
            "<h2>Frames the engines disagree on</h2>",
            f"<table><tr><th>image</th><th>frame</th><th>A</th><th>B</th></tr>{disagreements}</table>"
            if disagreements else "<p>None: the engines agree on every frame.</p>",
            "<p>docs/compare.md explains every number.</p>"]
    return _page(f"shiftaudit: {b['path']} against {a['path']}", body)
