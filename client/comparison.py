"""Views of a comparison of two engines (``shiftaudit.compare/v1``, `shiftaudit.server.engine.compare`):
the table, Markdown and JUnit, with the non-inferiority gates."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from .gates import NAMES, Check


def _est(m: dict, signed: bool = False) -> str:
    if m["value"] is None:
        return "-"
    f = "+.3f" if signed else ".3f"
    return f"{m['value']:{f}} [{m['ci95'][0]:{f}}, {m['ci95'][1]:{f}}]"


def rows(comparison: dict, found: list[Check]) -> list[list[str]]:
    """Header and a row per protocol: both engines' P(top-1 change), the paired increase and McNemar's p,
    the increase of MAC, agreement on identical frames, and the gates."""
    head = ["protocol", "pairs", "P A", "P B", "increase B-A [95% CI]", "McNemar p", "MAC increase [95% CI]",
            "agreement", *(["gate"] if found else [])]
    out = [head]
    for name, p in comparison["protocols"].items():
        mine = [c for c in found if c.protocol == name]
        gate = ["FAIL: " + "; ".join(c.reason for c in mine if c.failed) if any(c.failed for c in mine) else "pass"]
        out.append([name, str(p["pairs"]), _est(p["a"]["p_top1_change"]), _est(p["b"]["p_top1_change"]),
                    _est(p["p_top1_change_increase"], True), f"{p['mcnemar_p']:.3g}", _est(p["mac_increase"], True),
                    f"{p['agreement']['frames']['value']:.3f}" if p["agreement"]["frames"]["value"] is not None else "-",
                    *(gate if found else [])])
    return out


def format_comparison(comparison: dict, found: list[Check]) -> str:
    from rich import box
    from rich.table import Column, Table

    from .table import _render

    table = rows(comparison, found)
    rich_table = Table(*(Column(h, justify="left" if i in (0, 8) else "right") for i, h in enumerate(table[0])),
                       box=box.SIMPLE_HEAD, pad_edge=False)
    for row in table[1:]:
        rich_table.add_row(*row)
    a, b = comparison["a"]["model"], comparison["b"]["model"]
    lines = [f"A (baseline): {a['path']} sha256 {a['sha256'][:12]}...; B: {b['path']} sha256 {b['sha256'][:12]}...; "
             f"{comparison['images']} images, identical frames", *_render(rich_table)]
    if comparison["disagreements"]:
        d = comparison["disagreements"][0]
        lines.append(f"first disagreement: {d['image']} {d['protocol']} unit {d['index']} frame {d['frame']}: "
                     f"A {d.get('a_name', d['a'])}, B {d.get('b_name', d['b'])}")
    return "\n".join(lines)


def markdown(comparison: dict, found: list[Check]) -> str:
    a, b = comparison["a"]["model"], comparison["b"]["model"]
    failed = [c for c in found if c.failed]
    verdict = "" if not found else (f" — **{len(failed)} of {len(found)} gates failed**" if failed
                                    else f" — all {len(found)} gates passed")
    table = rows(comparison, found)
    lines = [f"## shiftaudit: `{b['path']}` against `{a['path']}`{verdict}", "",
             "| " + " | ".join(table[0]) + " |", "| " + " | ".join(["---"] + ["---:"] * 7 + ["---"] * (len(table[0]) - 8)) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in table[1:]]
    lines += ["", f"Paired on {comparison['images']} images' identical frames; intervals treat each image as the unit "
              "of sampling. McNemar: exact two-sided test on the pairs only one engine flipped.", ""]
    return "\n".join(lines)


def junit(comparison: dict, found: list[Check]) -> str:
    suites = ET.Element("testsuites", name="shiftaudit compare", tests=str(len(found)),
                        failures=str(sum(c.failed for c in found)), errors="0")
    suite = ET.SubElement(suites, "testsuite", name=f"shiftaudit: {comparison['b']['model']['path']} against "
                          f"{comparison['a']['model']['path']}", tests=str(len(found)),
                          failures=str(sum(c.failed for c in found)), errors="0", skipped="0")
    for c in found:
        case = ET.SubElement(suite, "testcase", classname=f"shiftaudit.{c.protocol}", name=c.title, time="0")
        numbers = json.dumps(comparison["protocols"][c.protocol][c.metric])
        if c.failed:
            ET.SubElement(case, "failure", type="shift-sensitivity", message=c.reason).text = numbers
        else:
            ET.SubElement(case, "system-out").text = f"{NAMES[c.metric]}: {numbers}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
