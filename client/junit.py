"""The report as a JUnit XML file, for the test view of a CI system (Jenkins' junit-10 schema, which
GitLab, GitHub Actions' test reporters and Azure DevOps read too): one test case per protocol and gate,
a failure carrying the numbers; without gates, one passing case per protocol with its numbers. Written
with the standard library's ElementTree: the format is a handful of elements."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from .gates import GATED, NAMES, Check


def _numbers(proto: dict) -> str:
    lines = [f"pairs: {proto['pairs']}"]
    for metric in GATED:
        name, m = NAMES[metric], proto[metric]
        value = "not measured" if m["value"] is None else f"{m['value']:.4f} (95% CI {m['ci95'][0]:.4f}-{m['ci95'][1]:.4f})"
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def render(report: dict, found: list[Check] | None) -> str:
    m = report["model"]
    cases = []
    for name, proto in report["protocols"].items():
        mine = [c for c in found or [] if c.protocol == name]
        if found is None:
            cases.append((name, f"{name}: measured", None, proto))
        cases += [(name, c.title, c, proto) for c in mine]
    failures = sum(1 for _, _, c, _ in cases if c is not None and c.failed)
    time = f"{report['seconds']:.3f}"
    suites = ET.Element("testsuites", name="shiftaudit", tests=str(len(cases)), failures=str(failures), errors="0",
                        time=time)
    suite = ET.SubElement(suites, "testsuite", name=f"shiftaudit: {m['path']}", tests=str(len(cases)),
                          failures=str(failures), errors="0", skipped="0", time=time)
    properties = ET.SubElement(suite, "properties")
    for key, value in (("model.path", m["path"]), ("model.sha256", m["sha256"]),
                       ("shiftaudit.version", report["tool"]["version"]), ("frames", report["frames"]),
                       ("images", len(report["images"])),
                       *((f"config.{k}", v) for k, v in report["config"].items())):
        ET.SubElement(properties, "property", name=key, value=value if isinstance(value, str) else json.dumps(value))
    for protocol, title, check, proto in cases:
        case = ET.SubElement(suite, "testcase", classname=f"shiftaudit.{protocol}", name=title, time="0")
        if check is not None and check.failed:
            failure = ET.SubElement(case, "failure", type="shift-sensitivity", message=check.reason)
            failure.text = _numbers(proto)
        else:
            ET.SubElement(case, "system-out").text = _numbers(proto)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
