"""The readable summary printed at the end of a run (a `Summary`): a row per protocol with its gates,
sensitivity by embedded size, then the notes (accuracy, the run, the preprocessing in force and where it
came from, labels, skips) and the warnings."""
from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Column, Table

from .summary import HEAD, SIZE_HEAD, ComparisonSummary, Summary


def render(table: Table) -> list[str]:
    """A rich table as plain lines (no colour, no width limit), for the terminal and for logs alike."""
    console = Console(file=io.StringIO(), width=1000, color_system=None, highlight=False)
    console.print(table)
    return [line.rstrip() for line in console.file.getvalue().splitlines() if line.strip()]


def grid(head: list[str], rows: list[list[str]], left: tuple[int, ...] = (0,)) -> list[str]:
    """Rows under their head, the columns of ``left`` aligned left and the others (numbers) right."""
    table = Table(*(Column(h, justify="left" if i in left else "right") for i, h in enumerate(head)),
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    return render(table)


def format_table(summary: Summary) -> str:
    """The warnings first (what was guessed, a model that cannot be judged), then the results."""
    gate = ["gate"] if summary.gated else []
    lines = [f"warning: {w}" for w in summary.warnings]
    lines += grid(HEAD + gate, [r.cells + ([r.gate.text] if r.gate else []) for r in summary.rows],
                  left=(0, len(HEAD)))
    for protocol, rows in summary.by_size.items():  # the paper's Fig. 6 as numbers: against the embedded size
        lines += grid([f"{protocol} S", *SIZE_HEAD[1:]], rows, left=())
    lines += summary.notes
    if summary.verdict:
        lines.append(f"verdict: {summary.verdict.text}")
    return "\n".join(lines)


def format_comparison(summary: ComparisonSummary) -> str:
    a, b = summary.a, summary.b
    lines = [*(f"warning: {w}" for w in summary.warnings),
             f"A (baseline): {a['path']} sha256 {a['sha256'][:12]}...; B: {b['path']} sha256 {b['sha256'][:12]}...; "
             f"{summary.images} images, identical frames",
             *grid(summary.head, summary.rows, left=(0, len(summary.head) - 1) if summary.checks else (0,))]
    if summary.first_disagreement:
        lines.append(summary.first_disagreement)
    return "\n".join(lines)
