"""The views of a ``shiftaudit.remediate/v1`` document (docs/remediate.md): the terminal's tables, Markdown,
and a page with the trade-off plot; each says the caveats in plain words."""
from __future__ import annotations

import html
from collections.abc import Sequence

from . import markdown as md
from .page import document, figure, grid
from .summary import estimate
from .table import grid as text_grid

RANK_HEAD = ["remedy", "gain (mean −ΔP)", "fidelity [95% CI]", "accuracy change", "throughput", "rewritten"]
CAVEATS = (
    "No remedy here is retrained: a blur the weights never saw usually costs accuracy (fidelity says how "
    "often the variant still gives the original's class), and fine-tuning the variant is what recovers it "
    "(antialiased-cnns).",
    "A nonlinearity after a blur can bring aliasing back (the paper's §3): a variant can be steadier at one "
    "protocol and not at another; --layers shows where its invariance breaks now.",
    "Gain is the mean decrease of P(top-1 change) over the protocols (null left out), paired on identical "
    "frames: on few images its intervals are wide, and only an interval that excludes 0 shows a change.",
    "Throughput is bare engine calls on one batch, relative to the original's in the same run: the cost of "
    "the rewrite in every call, not the audit's rendering.")


def ranked(doc: dict) -> Sequence[dict]:
    """The variants, the largest gain in invariance first (ties: the higher fidelity)."""
    return sorted(doc["variants"], key=lambda v: (-(v["gain"] if v["gain"] is not None else -1),
                                                  -(v["fidelity"]["value"] or 0)))


def _row(v: dict) -> list[str]:
    done = v["remedy"].get("rewritten")
    what = (f"{len(done)} op{'s' if len(done) != 1 else ''}" if done is not None
            else f"{len(v['remedy']['shifts'])} shifts" if "shifts" in v["remedy"] else "the input")
    return [v["name"], "–" if v["gain"] is None else f"{v['gain']:+.3f}", estimate(v["fidelity"]),
            "–" if v["accuracy_change"] is None else f"{v['accuracy_change']:+.3f}",
            "–" if v["cost"]["throughput_ratio"] is None else f"{v['cost']['throughput_ratio']:.2f}×", what]


def rows(doc: dict) -> list[list[str]]:
    return [_row(v) for v in ranked(doc)]


def increases(doc: dict) -> tuple[list[str], list[list[str]]]:
    """Per protocol: the original's P(top-1 change), and each variant's paired increase B − A."""
    variants = ranked(doc)
    head = ["protocol", "original P", *(f"{v['name']} ΔP [95% CI]" for v in variants)]
    body = [[name, estimate(p["p_top1_change"]),
             *(estimate(v["protocols"][name]["p_top1_change_increase"], True) for v in variants)]
            for name, p in doc["original"]["protocols"].items()]
    return head, body


def _findings(doc: dict) -> list[str]:
    if doc["original"]["layers"] is None:
        return []
    return [f"original: {doc['original']['layers']['text']}",
            *(f"{v['name']}: {v['layers']['text']}" for v in ranked(doc))]


def format_remediation(doc: dict) -> str:
    head, body = increases(doc)
    lines = [f"{doc['model']['path']}: {len(doc['variants'])} remedies on {doc['images']} images, identical frames",
             *text_grid(RANK_HEAD, rows(doc), left=(0, 5)), "", *text_grid(head, body), *_findings(doc)]
    return "\n".join(lines)


def markdown(doc: dict) -> str:
    head, body = increases(doc)
    return "\n".join([f"## shiftaudit remediate: `{doc['model']['path']}`", "",
                      f"{len(doc['variants'])} remedies on {doc['images']} images, judged with the original on "
                      "identical frames, ranked by gain.", "", *md.table(RANK_HEAD, rows(doc), ["---", *["---:"] * 4, "---"]), "",
                      *md.table(head, body, ["---", *["---:"] * (len(head) - 1)]), "", *(f"- {f}" for f in _findings(doc)),
                      "", *(f"- {c}" for c in CAVEATS), ""])


def plot(doc: dict) -> str:
    """The trade-off: invariance gained against fidelity lost, each variant's cost in its label."""
    from .plots import plt, svg, unit_axis

    fig, ax = plt.subplots(figsize=(8, 4))
    for v in doc["variants"]:
        if v["gain"] is None or v["fidelity"]["value"] is None:
            continue
        loss = 1 - v["fidelity"]["value"]
        ratio = v["cost"]["throughput_ratio"] or 1.0
        ax.errorbar([loss], [v["gain"]], xerr=[[loss - (1 - v["fidelity"]["ci95"][1])],
                                               [(1 - v["fidelity"]["ci95"][0]) - loss]],
                    fmt="o", capsize=3, markersize=5 + 10 * (1 - min(ratio, 1.0)))
        ax.annotate(f"{v['name']} ({ratio:.2f}× throughput)", (loss, v["gain"]), fontsize=8, xytext=(6, 6),
                    textcoords="offset points")
    ax.axhline(0, color="#555", linewidth=1)
    ax.margins(y=0.3)  # room for the labels above the highest point
    unit_axis(ax.set_xlim)
    ax.set_xlabel("fidelity lost: 1 − agreement with the original's top-1 on unshifted frames (95 % interval)")
    ax.set_ylabel("invariance gained: mean −ΔP(top-1 change)")
    ax.grid(alpha=0.3)
    return svg(fig)


def page(doc: dict) -> str:
    head, body = increases(doc)
    variants = ranked(doc)
    details = [[v["name"], ", ".join(f"{k}={val}" for k, val in v["remedy"].items() if k not in ("rewritten", "shifts")),
                ", ".join(r["node"] for r in v["remedy"].get("rewritten", [])) or "–", v["file"] or "not written"]
               for v in variants]
    parts = [f"<h1>shiftaudit remediate: <code>{html.escape(doc['model']['path'])}</code></h1>",
             f"<p>{len(variants)} remedies, each a rewrite of a copy of the ONNX graph, judged with the original on "
             f"the identical frames of {doc['images']} images, ranked by gain.</p>",
             grid(RANK_HEAD, rows(doc), {1, 2, 3, 4}),
             figure(plot(doc), "Each variant's gain in invariance (the mean decrease of P(top-1 change) over the "
                    "protocols, paired with the original) against the fidelity it gives up (how often its top-1 "
                    "class on unshifted frames differs from the original's); larger markers cost more throughput."),
             "<h2>Protocol by protocol</h2>", grid(head, body, set(range(1, len(head)))),
             *(f"<p>{html.escape(f)}</p>" for f in _findings(doc)),
             "<h2>What each remedy rewrote</h2>", grid(["remedy", "parameters", "ops rewritten", "file"], details, set()),
             "<h2>Before acting on it</h2>", *(f'<p class="warn">{html.escape(c)}</p>' for c in CAVEATS)]
    return document(f"shiftaudit remediate: {doc['model']['path']}", parts)
