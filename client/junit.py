"""A `Summary` (or a `ComparisonSummary`) as a JUnit XML file, for the test view of a CI system (Jenkins'
junit-10 schema, which GitLab, GitHub Actions' test reporters and Azure DevOps read too): one test case per
protocol and gate, a failure carrying the numbers, an inconclusive gate skipped with why; without gates,
one passing case per protocol with its numbers. Written with the standard library's ElementTree: the format
is a handful of elements."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from .summary import COMPARISON_HEAD, HEAD, ComparisonSummary, Row, Summary
from .verdict import FAIL, INCONCLUSIVE, Judged


def _numbers(row: Row) -> str:
    return "\n".join(f"{h}: {c}" for h, c in zip(HEAD[1:], row.cells[1:]))


def _suites(name: str, suite_name: str, cases: list[tuple[str, str, Judged | None, str]], seconds: str = "0",
            properties: list[tuple[str, str]] = ()) -> str:
    """The file: ``cases`` are (class, title, the judged check or None, the numbers)."""
    failures = str(sum(1 for _, _, j, _ in cases if j is not None and j.outcome is FAIL))
    skipped = str(sum(1 for _, _, j, _ in cases if j is not None and j.outcome is INCONCLUSIVE))
    suites = ET.Element("testsuites", name=name, tests=str(len(cases)), failures=failures, errors="0", time=seconds)
    suite = ET.SubElement(suites, "testsuite", name=suite_name, tests=str(len(cases)), failures=failures, errors="0",
                          skipped=skipped, time=seconds)
    if properties:
        props = ET.SubElement(suite, "properties")
        for key, value in properties:
            ET.SubElement(props, "property", name=key, value=value)
    for classname, title, judged, numbers in cases:
        case = ET.SubElement(suite, "testcase", classname=f"shiftaudit.{classname}", name=title, time="0")
        if judged is not None and judged.outcome is FAIL:
            ET.SubElement(case, "failure", type="shift-sensitivity", message=judged.reason).text = numbers
        elif judged is not None and judged.outcome is INCONCLUSIVE:
            ET.SubElement(case, "skipped", message=f"inconclusive: {judged.reason}")
            ET.SubElement(case, "system-out").text = numbers
        else:
            ET.SubElement(case, "system-out").text = numbers + (f"\n{judged.reason}" if judged else "")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def render(summary: Summary) -> str:
    cases = []
    for row in summary.rows:
        if not summary.gated:
            cases.append((row.protocol, f"{row.protocol}: measured", None, _numbers(row)))
        cases += [(row.protocol, j.check.title, j, _numbers(row)) for j in summary.judged or []
                  if j.check.protocol == row.protocol]
    return _suites("shiftaudit", f"shiftaudit: {summary.model}", cases, f"{summary.seconds:.3f}", summary.properties)


def render_comparison(summary: ComparisonSummary) -> str:
    rows = {r[0]: r for r in summary.rows}
    cases = [(j.check.protocol, j.check.title, j,
              "\n".join(f"{h}: {v}" for h, v in zip(COMPARISON_HEAD[1:], rows[j.check.protocol][1:])))
             for j in summary.judged]
    return _suites("shiftaudit compare", f"shiftaudit: {summary.b['path']} against {summary.a['path']}", cases)
