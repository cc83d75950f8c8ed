"""The report's views (`--markdown`, `--junit`) from an audit, from a stored report (`audit-client
report`) and from a server (`audit-client get`): the same numbers and gate verdicts everywhere; JUnit
files valid against Jenkins' JUnit schema; the Markdown's command line audits again to the same numbers."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from shiftaudit.client.cli import main
from shiftaudit.client.remote import AuditClient, DataPath
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, QUICK

JUNIT_XSD = os.environ.get("JUNIT_XSD")


def _audit(tmp_path, model, *extra) -> tuple[int, dict]:
    """An audit with every view; the views' texts by flag."""
    files = {flag: tmp_path / f"out.{flag}" for flag in ("json", "markdown", "junit")}
    code = main(["--engine", str(model), "--images", str(EXAMPLE_IMAGES), "--size", "40", "--protocol", "crop",
                 "--protocol", "embed-black", "--no-progress", *extra,
                 *(a for flag, path in files.items() for a in (f"--{flag}", str(path)))])
    return code, {flag: path.read_text() for flag, path in files.items()}


@pytest.fixture
def lite0(roots):
    models, _ = roots
    return models / "lite0.onnx"


def test_markdown_and_junit_carry_the_numbers_and_the_gate_verdicts(tmp_path, lite0, capsys):
    code, views = _audit(tmp_path, lite0, "--max-mac", "0.03", "--max-p-top1-change", "0.9", "--gate-on", "value")
    report = json.loads(views["json"])
    failing = [n for n, p in report["protocols"].items() if p["mac"]["value"] > 0.03]
    assert failing and code == 1  # the example model fails a MAC gate this tight on some protocol
    md = views["markdown"]
    assert md.startswith(f"## shiftaudit: `lite0.onnx` — ❌ **{len(failing)} of 4 gates failed**")
    for name, p in report["protocols"].items():
        assert f"| `{name}` | {p['pairs']} | {p['p_top1_change']['value']:.3f} [" in md
    suite = ET.fromstring(views["junit"]).find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 4 and suite.get("failures") == str(len(failing))
    failed = {c.get("name"): c.find("failure").get("message") for c in cases if c.find("failure") is not None}
    assert set(failed) == {f"{n}: MAC <= 0.03" for n in failing}
    assert all(m.startswith("mac ") and "> 0.03" in m for m in failed.values())
    if JUNIT_XSD:
        import xmlschema

        xmlschema.XMLSchema(JUNIT_XSD).validate(views["junit"])


@pytest.mark.skipif(not JUNIT_XSD, reason="JUNIT_XSD unset: .ci/run fetches Jenkins' JUnit schema (.ci/junit-xsd)")
def test_junit_without_gates_is_valid_and_passes(tmp_path, lite0):
    import xmlschema

    code, views = _audit(tmp_path, lite0)
    assert code == 0
    xmlschema.XMLSchema(JUNIT_XSD).validate(views["junit"])
    assert ET.fromstring(views["junit"]).find("testsuite").get("failures") == "0"


def test_the_markdown_command_line_audits_again_to_the_same_numbers(tmp_path, lite0, capsys):
    _, views = _audit(tmp_path, lite0)
    command = views["markdown"].split("```sh\n")[1].split("\n```")[0]
    argv = shlex.split(command.replace("IMAGES", str(EXAMPLE_IMAGES)).replace("lite0.onnx", str(lite0)))
    again = tmp_path / "again.json"
    assert argv[0] == "audit-client" and main([*argv[1:], "--no-progress", "--json", str(again)]) == 0
    first, second = json.loads(views["json"]), json.loads(again.read_text())
    assert (second["protocols"], second["config"]) == (first["protocols"], first["config"])


def test_a_stored_report_renders_again_with_new_gates(tmp_path, lite0, capsys):
    _, views = _audit(tmp_path, lite0)
    stored = tmp_path / "out.json"
    md = tmp_path / "again.md"
    assert main(["report", str(stored), "--markdown", str(md), "--max-p-top1-change", "0"]) == 1
    assert "gates failed" in md.read_text() and "P(top-1 change)" in capsys.readouterr().out
    assert main(["report", str(stored), "--json", str(stored)]) == 2  # never over the report it reads
    assert "is the report being rendered" in capsys.readouterr().err
    (tmp_path / "not.json").write_text('{"schema": "something else"}')
    assert main(["report", str(tmp_path / "not.json")]) == 2
    assert "not a shiftaudit.report/v2 report" in capsys.readouterr().err


def test_get_fetches_a_finished_audit_from_the_server(server, tmp_path, capsys):
    with AuditClient(server.target) as client:
        ids = []
        report = client.run("sub/small.onnx", images=DataPath("photos"), on_accepted=lambda i, _: ids.append(i), **QUICK)
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["--server", server.target, "get", ids[0], "--json", str(out), "--markdown", str(md)]) == 0
    # as the server stored it, and beside its id the server it came from (what `get` needs to fetch it again)
    assert json.loads(out.read_text()) == {**report, "audit": {"id": ids[0], "server": server.target}}
    assert "`small.onnx`" in md.read_text()
    assert main(["get", "no-such-audit", "--server", server.target]) == 2
    assert "NOT_FOUND" in capsys.readouterr().err


def test_a_newcomer_gets_all_three_from_the_example_audit(tmp_path):
    """The README's first command with the three views, through the installed console script."""
    files = {"--html": tmp_path / "report.html", "--markdown": tmp_path / "summary.md", "--junit": tmp_path / "junit.xml"}
    run = subprocess.run([Path(sys.executable).with_name("audit-client"), "--engine", EXAMPLE_MODEL, "--images",
                          EXAMPLE_IMAGES, *(a for flag, path in files.items() for a in (flag, path))],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert files["--html"].read_text().count('src="data:image/jpeg') > 0
    assert files["--markdown"].read_text().startswith("## shiftaudit: `efficientnet_lite0.onnx`")
    suite = ET.fromstring(files["--junit"].read_text()).find("testsuite")
    assert suite.get("tests") == "5" and suite.get("failures") == "0"  # the five default protocols, no gate
    if JUNIT_XSD:
        import xmlschema

        xmlschema.XMLSchema(JUNIT_XSD).validate(files["--junit"].read_text())
