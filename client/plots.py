"""The paper's figures for a report, drawn by matplotlib as inline SVG, each with axes, units and 95 %
intervals: the protocols with their gates, Fig. 1's curves along sequences, Fig. 6's sensitivity against
the embedded size, App. A.4's by confidence, accuracy with labels, and a comparison's increases."""
from __future__ import annotations

import io

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend)
from matplotlib.ticker import MaxNLocator  # noqa: E402

from shiftaudit.server.engine.protocols import Axis  # noqa: E402

from .gates import GATED, NAMES, Check  # noqa: E402

SEQUENCES = 12  # sequences drawn in Fig. 1's small multiples, per protocol
FEW_IMAGES = 5  # a size measured on fewer images is drawn grey, with its count: its interval says little
MARGIN = 0.03  # of a [0, 1] axis on each side, so that a point at 0 or 1 is drawn whole


def unit_axis(set_lim, top: float = 1.0) -> None:
    """An axis of fractions from 0 to ``top``, with room for a whole marker at either end."""
    set_lim(-MARGIN * top, top * (1 + MARGIN))


def images_by_size(report: dict, protocol: str) -> dict[int, int]:
    """Per embedded size of ``protocol``, the images it was measured on (from the tallies; a v1 report's
    do not know them: 0)."""
    strata = report["tallies"][protocol]["strata"]
    return {int(k.split(":")[1]): (t[4] if len(t) > 4 else 0) for k, t in strata.items() if k.startswith("size:")}


def svg(fig: plt.Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def short(name: str, n: int = 28) -> str:
    return name if len(name) <= n else "…" + name[-n + 1:]


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


def _per_protocol(names: list[str], metrics: dict[str, str], estimates, limits, zero: bool = False) -> str:
    """A panel per metric, a row per protocol: each estimate with its interval; dashed: the gates."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.5 * len(names) + 1.6), sharey=True)
    y = np.arange(len(names))
    for ax, (metric, label) in zip(axes, metrics.items()):
        ests = estimates(metric)
        _errorbar(ax, y, ests, horizontal=True, color="#1f4e79")
        if zero:
            ax.axvline(0, color="#555", linewidth=1)
        for limit in limits(metric):
            ax.axvline(limit, color="#b00020", linestyle="--", linewidth=1)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
        if not zero:  # P(top-1 change) on [0, 1]; MAC, small on the models of interest, up to what the intervals reach
            reach = max([e["ci95"][1] for e in ests if e["value"] is not None] + list(limits(metric)) + [0.05])
            unit_axis(ax.set_xlim, 1 if metric == "p_top1_change" else min(1.0, 1.15 * reach))
        ax.xaxis.set_major_locator(MaxNLocator(5))  # a narrow panel: few ticks, never run together
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    return svg(fig)


def protocols(report: dict, checks: list[Check] | None) -> str:
    names = list(report["protocols"])
    return _per_protocol(names, {m: f"{NAMES[m]} (fraction; 95 % interval)" for m in GATED},
                         lambda m: [report["protocols"][n][m] for n in names],
                         lambda m: {c.limit for c in checks or [] if c.metric == m})


def increases(comparison: dict, checks: list[Check]) -> str:
    """Per protocol, the paired increase B − A of P(top-1 change) and of MAC, image-clustered intervals."""
    names = list(comparison["protocols"])
    return _per_protocol(names, {"p_top1_change_increase": "P(top-1 change): B − A", "mac_increase": "MAC: B − A"},
                         lambda m: [comparison["protocols"][n][m] for n in names],
                         lambda m: {c.limit for c in checks if c.metric == m}, zero=True)


def _jump(p: list[float]) -> float:
    return float(np.max(np.abs(np.diff(p)))) if len(p) > 1 else 0.0


def sequences(report: dict, protocol: str, axis: Axis) -> str | None:
    """Fig. 1: p(first frame's top-1) along each sequence of ``protocol`` (its frames step along ``axis``),
    the most changing first."""
    units = [(rec, u) for rec in report["images"] for u in rec["units"] if u["protocol"] == protocol]
    if not units:
        return None
    units.sort(key=lambda ru: (-ru[1]["changes"], -_jump(ru[1]["p_top1"]), ru[0]["sha256"], ru[1]["index"]))
    shown = units[:SEQUENCES]
    cols = min(4, len(shown))
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.7 * cols, 2.2 * rows), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, (rec, u) in zip(axes.flat, shown):
        p = np.array(u["p_top1"])
        x = axis.positions(u, report["config"], len(p))
        ax.plot(x, p, "-", color="#1f4e79", linewidth=1.2)
        top = np.array(u["top1"])
        flips = np.nonzero(top[1:] != top[:-1])[0] + 1
        ax.plot(x[flips], p[flips], "o", color="#b00020", markersize=4, label="top-1 changes")
        ax.set_title(short(rec["image"]), fontsize=8)
        unit_axis(ax.set_ylim)
        ax.set_xlabel(axis.label, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(shown):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("p(first top-1)", fontsize=8)
    return svg(fig)


def sizes(by_size: list[dict], images: dict[int, int]) -> str:
    """Fig. 6: sensitivity against the embedded size, with the intervals as bands; a size measured on fewer
    than `FEW_IMAGES` images (``images``: size -> count; 0: not known) is a grey point with its count, out
    of the band (large sizes fit few images: their intervals span most of [0, 1])."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    at = np.array([s["size"] for s in by_size])
    few = {s for s, n in images.items() if 0 < n < FEW_IMAGES}
    for metric, color in zip(GATED, ("#1f4e79", "#e07b00")):
        measured = [s for s in by_size if s[metric]["value"] is not None]
        _band(ax, [s for s in measured if s["size"] not in few], metric, color)
        grey = [s for s in measured if s["size"] in few]
        if grey:
            ax.plot([s["size"] for s in grey], [s[metric]["value"] for s in grey], "o", color="#9e9e9e",
                    markerfacecolor="white" if metric == "mac" else "#9e9e9e",
                    label=f"{NAMES[metric]}, fewer than {FEW_IMAGES} images")
    for s in by_size:
        if s["size"] in few:
            ax.annotate(f"n={images[s['size']]}", (s["size"], 1.0), fontsize=7, color="#616161", ha="center",
                        va="bottom", xytext=(0, 2), textcoords="offset points")
    ax.set_xlim(at.min() - 2, at.max() + 2)
    unit_axis(ax.set_ylim, 1.08 if few else 1.0)
    ax.set_xlabel("embedded size S (pixels, short side)")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return svg(fig)


def _band(ax: plt.Axes, rows: list[dict], metric: str, color: str) -> None:
    """``metric`` of the sizes ``rows`` as a line of points in its 95 % band."""
    if rows:
        x = [s["size"] for s in rows]
        ax.fill_between(x, [s[metric]["ci95"][0] for s in rows], [s[metric]["ci95"][1] for s in rows], color=color,
                        alpha=0.2)
        ax.plot(x, [s[metric]["value"] for s in rows], "o-", color=color, label=f"{NAMES[metric]} (95 % band)")


def confidence(report: dict) -> str:
    """App. A.4: P(top-1 change) by the first frame's top-1 probability, per protocol."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    names = list(report["protocols"])
    for i, name in enumerate(names):
        bins = report["protocols"][name]["by_confidence"]
        centres = [(b["confidence"][0] + b["confidence"][1]) / 2 + (i - (len(names) - 1) / 2) * 0.02 for b in bins]
        _errorbar(ax, centres, [b["p_top1_change"] for b in bins], label=name)
    unit_axis(ax.set_xlim)
    unit_axis(ax.set_ylim)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel("first frame's top-1 probability (bins of 0.2)")
    ax.set_ylabel("P(top-1 change), 95 % interval")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(alpha=0.3)
    return svg(fig)


def labelled(report: dict) -> str:
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
    unit_axis(ax.set_xlim)
    ax.set_xlabel("fraction, 95 % interval")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return svg(fig)
