"""A `Summary` (or a `ComparisonSummary`) as Markdown, for a CI step summary or a pull-request comment: the
verdict first, the protocols' table, sensitivity by embedded size, then what was audited and how to run it
again."""
from __future__ import annotations

from .summary import HEAD, SIZE_HEAD, ComparisonSummary, Summary
from .verdict import PASS, Verdict


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def table(head: list[str], rows: list[list[str]], align: list[str]) -> list[str]:
    return [_row(head), _row(align), *(_row(r) for r in rows)]


def _verdict(v: Verdict | None) -> str:
    if v is None:
        return ""
    return f" — {v.text}" if v.outcome is PASS else f" — {v.outcome.mark} **{v.text}**"


def sentence(line: str) -> str:
    return line[0].upper() + line[1:] + ("" if line.endswith(".") else ".")


def render(summary: Summary, extra: str = "") -> str:
    """``extra``: a section after the notes (a layer profile's)."""
    gate = ["gate"] if summary.gated else []
    rows = [[f"`{r.protocol}`", *r.cells[1:], *([f"{r.gate.outcome.mark} {r.gate.detail}"] if r.gate else [])]
            for r in summary.rows]
    lines = [f"## shiftaudit: `{summary.model}`{_verdict(summary.verdict)}", "",
             *(f"> **Warning**: {sentence(w)}" for w in summary.warnings), *([""] if summary.warnings else []),
             *table(HEAD + gate, rows, ["---", "---:", "---:", "---:", *(["---"] * len(gate))])]
    for protocol, by_size in summary.by_size.items():
        lines += ["", f"<details><summary>{protocol}: sensitivity by embedded size</summary>", "",
                  *table(SIZE_HEAD, by_size, ["---:"] * 4), "", "</details>"]
    lines += ["", *(sentence(n) for n in summary.notes), "", *details("What was audited", summary.audited), extra,
              "Run it again:", "", "```sh", summary.command, "```", ""]
    return "\n".join(lines)


def details(title: str, rows: list[tuple[str, str]]) -> list[str]:
    """Rows of (what, text) folded under ``title``."""
    return [f"<details><summary>{title}</summary>", "", *(f"- **{k}**: {v}" for k, v in rows), "", "</details>", ""]


def render_comparison(summary: ComparisonSummary) -> str:
    a, b = summary.a, summary.b
    lines = [f"## shiftaudit: `{b['path']}` against `{a['path']}`{_verdict(summary.verdict)}", "",
             *(f"> **Warning**: {sentence(w)}" for w in summary.warnings), *([""] if summary.warnings else []),
             *table(summary.head, summary.rows, ["---"] + ["---:"] * 7 + ["---"] * (len(summary.head) - 8)),
             "", f"Paired on {summary.images} images' identical frames; intervals treat each image as the unit of "
             "sampling. McNemar: exact two-sided test on the pairs only one engine flipped.", ""]
    return "\n".join(lines)
