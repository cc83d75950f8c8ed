"""The per-layer profile's views (``shiftaudit.layers/v2``, docs/layers.md): the terminal table, Markdown,
and HTML, whose plot draws the three errors against depth, the paper's Fig. 4 for the user's own model.
A profile is rendered from its JSON alone, so ``audit-client report --layers`` can add it to an audit's page."""
from __future__ import annotations

import html

import numpy as np

from shiftaudit.server.engine.errors import InputError
from shiftaudit.server.engine.layers.profile import READABLE, SCHEMA

from . import markdown as md
from .page import document, facts, figure, grid
from .rerun import command_line
from .summary import audited, guessed, plural
from .table import grid as text_grid

MEASURES = {"pooled_invariance": "pooled invariance", "shiftability": "shiftability",
            "equivariance": "equivariance (whole stride)"}
COLORS = {"pooled_invariance": "#1f4e79", "shiftability": "#e07b00", "equivariance": "#6a6a6a"}
NAME = 36  # characters of a tensor's name shown in tables


def _value(m: dict) -> str:
    if m["value"] is None:
        return "-"
    lo, hi = m["ci95"]
    return f"{m['value']:.3f} [{lo:.3f}, {'∞' if hi is None else f'{hi:.3f}'}]"


def _short(name: str) -> str:
    return name if len(name) <= NAME else "…" + name[-NAME + 1:]


def _stride(row: dict) -> str:
    return "x".join(f"{s:g}" for s in dict.fromkeys(row["stride"]))


def _subsamples(row: dict) -> bool:
    """Whether this tensor is a subsampling op's own output (where a resolution starts)."""
    sub = row["subsampled_by"]
    return bool(sub) and sub["node"] == row["node"]


def rows(doc: dict) -> list[list[str]]:
    """The table, header first: a row per tensor in graph order; ◀ marks the finding's tensor."""
    out = [["#", "tensor", "op", "stride", "C×H×W", "RF", *(f"{label} [95% CI]" for label in MEASURES.values()), ""]]
    for row in doc["tensors"]:
        c, h, w = row["shape"]
        out.append([str(row["depth"]), _short(row["name"]), (row["op"] or "input") + (" ⇣" if _subsamples(row) else ""),
                    _stride(row), f"{c}×{h}×{w}", str(row["receptive_field"] or "?"),
                    *(_value(row[m]) for m in MEASURES), "◀" if row["name"] == doc["finding"]["tensor"] else ""])
    return out


def _run_line(doc: dict) -> list[str]:
    mem = doc["memory"]
    lines = [f"{plural(len(doc['images']), 'image')}, {plural(doc['units'], 'unit')} of {len(doc['steps'])} frames "
             f"(shifts {', '.join(str(k) for k in doc['steps'])} x {tuple(doc['config']['shift'])}) in "
             f"{doc['seconds']:.1f} s; {doc['config']['protocols'][0]}; {mem['frames_per_batch']} frames per batch, "
             f"{mem['batch_bytes'] / 2**20:.0f} MiB of activations each"]
    if mem["over_budget"]:
        lines.append(f"warning: one unit's activations exceed --max-memory {doc['config']['max_memory_mib']} MiB; "
                     "it ran anyway, one unit per batch (choose fewer --tensors to hold less)")
    if doc["skipped"]:
        lines.append(f"skipped {len(doc['skipped'])}: " + "; ".join(s["reason"] for s in doc["skipped"][:3]))
    return lines


def _numeric(header: list[str]) -> set[int]:
    """The columns of numbers: depth, receptive field and the measures."""
    return {i for i in range(len(header)) if i in (0, 5) or i >= 6}


def format_profile(doc: dict) -> str:
    header, *body = rows(doc)
    f = doc["finding"]
    left = tuple(i for i in range(len(header)) if i not in _numeric(header))
    return "\n".join([*(f"warning: {w}" for w in _warnings(doc)), *text_grid(header, body, left),
                      f"finding: {f['text']}", f"caveat: {f['caveat']}", *_run_line(doc)])


def _warnings(doc: dict) -> list[str]:
    """What was guessed of the model's preprocessing: said before any result."""
    return guessed(doc["model"]["preprocessing"])


def markdown(doc: dict) -> str:
    header, *body = rows(doc)
    f = doc["finding"]
    align = ["---:" if i in _numeric(header) else "---" for i in range(len(header))]
    lines = [f"## shiftaudit layers: `{doc['model']['path']}`", "", *(f"> **Warning**: {md.sentence(w)}" for w in _warnings(doc)),
             "", f"**Finding:** {f['text']}", "", f"_{f['caveat']}_",
             "", *md.table(header, body, align), "", *_run_line(doc), "", "Run it again:", "", "```",
             run_again(doc), "```", ""]
    return "\n".join(lines)


def run_again(doc: dict) -> str:
    """The audit-client layers command with the very options."""
    return command_line(doc, command="audit-client layers")


def plot(doc: dict) -> str:
    """The errors against depth, each with its 95 % band; dotted: where a subsampling op sets a new stride;
    red: the finding."""
    tensors = doc["tensors"]
    x = np.arange(len(tensors))
    from .plots import plt, svg  # matplotlib only when a page is drawn: the CLI starts without it

    fig, ax = plt.subplots(figsize=(10, 3.6))
    for m, label in MEASURES.items():
        v = np.array([np.nan if t[m]["value"] is None else t[m]["value"] for t in tensors])
        lo = np.array([np.nan if t[m]["ci95"] is None else t[m]["ci95"][0] for t in tensors])
        hi = np.array([np.nan if t[m]["ci95"] is None or t[m]["ci95"][1] is None else t[m]["ci95"][1] for t in tensors])
        ax.fill_between(x, lo, hi, color=COLORS[m], alpha=0.18, linewidth=0)
        ax.plot(x, v, marker="o" if len(x) <= 40 else None, color=COLORS[m], markersize=3, label=label,
                linestyle="--" if m == "equivariance" else "-")
    ticks = [i for i, t in enumerate(tensors) if _subsamples(t) or i in (0, len(tensors) - 1)]
    for i, t in enumerate(tensors):
        if _subsamples(t):
            ax.axvline(i - 0.5, color="#999", linestyle=":", linewidth=1)
    ax.set_xticks(ticks, [f"{_short(tensors[i]['name'])[:18]}\nstride {_stride(tensors[i])}" for i in ticks],
                  fontsize=7, rotation=30, ha="right")
    found = doc["finding"]["tensor"]
    if found is not None:
        i = next(i for i, t in enumerate(tensors) if t["name"] == found)
        ax.plot([i], [tensors[i][doc["finding"]["measure"]]["value"]], "o", markersize=11, markerfacecolor="none",
                markeredgecolor="#b00020", markeredgewidth=2, label="finding")
    ax.set_xlim(-0.5, len(tensors) - 0.5)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("tensor, in graph order (dotted: a subsampling op)")
    ax.set_ylabel("relative error (mean, 95 % band)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: never over the data
    ax.grid(alpha=0.3)
    return svg(fig)


def section(doc: dict) -> str:
    """The profile as a part of a page: the finding, the plot, the table, how it was made."""
    f = doc["finding"]
    header, *body = rows(doc)
    return "\n".join([
        "<h2>Where the invariance breaks: the per-layer profile</h2>",
        *(f'<p class="warn">{html.escape(w)}.</p>' for w in _warnings(doc)),
        f'<p class="{"fail" if f["tensor"] else "pass"}">{html.escape(f["text"])}</p>',
        f'<p class="warn">{html.escape(f["caveat"])}</p>',
        figure(plot(doc), "Each measure's mean over the frame pairs with its 95 % band, tensor by tensor in graph "
                "order: pooled invariance (the paper's Claim: ~0 for a shiftable representation), shiftability "
                "(a one-pixel shift against band-limited interpolation of the tensor) and equivariance (a shift of "
                "exactly the stride: the step in input pixels between neighbouring cells, the product of the "
                "strides of the convolutions and pools before it). Each is the mean relative error over the frame "
                "pairs: 0 where the tensor moves with the image, larger where subsampling aliases."),
        grid(header, body, _numeric(header), css="layers"),
        "<p>" + html.escape(" ".join(_run_line(doc))) + "</p>",
        facts([*audited(doc), ("run it again", run_again(doc))]),
    ])


def page(doc: dict) -> str:
    return document(f"shiftaudit layers: {doc['model']['path']}",
                 [f"<h1>shiftaudit layers: <code>{html.escape(doc['model']['path'])}</code></h1>", section(doc)])


def check(doc: object, where: str) -> dict:
    """A loaded document that is a profile, or an InputError naming ``where``."""
    if not isinstance(doc, dict) or doc.get("schema") not in READABLE:
        raise InputError(f"{where}: not a {SCHEMA} profile (audit-client layers --json writes one)")
    return doc
