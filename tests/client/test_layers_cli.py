"""audit-client layers: the per-layer profile of the example model from the command line (table, JSON,
Markdown whose command runs it again, a page that loads offline), the profile added to an audit's page,
and every input a user can get wrong refused in one line."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from shiftaudit.client.api import profile
from shiftaudit.client.cli import main
from shiftaudit.server.engine.runners import EngineOptions
from tests.client.test_html import CHROMIUM, _chromium
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, assert_valid_report
from tests.support.models import shift_cnn

CPU = EngineOptions(device="cpu")


@pytest.fixture(scope="module")
def profiled(tmp_path_factory) -> tuple[Path, str]:
    d = tmp_path_factory.mktemp("layers")
    run = subprocess.run([sys.executable, "-m", "shiftaudit.client.cli", "layers", "--engine", str(EXAMPLE_MODEL),
                          "--images", str(EXAMPLE_IMAGES), "--seed", "2", "--no-progress", "--json", str(d / "p.json"),
                          "--markdown", str(d / "p.md"), "--html", str(d / "p.html")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return d, run.stdout


def test_the_table_reads_top_down_with_the_finding_under_it(profiled):
    d, out = profiled
    doc = json.loads((d / "p.json").read_text())
    assert_valid_report(doc, "layers")
    lines = out.splitlines()
    assert "pooled invariance [95% CI]" in lines[0] and "shiftability [95% CI]" in lines[0]
    assert [t["stride"][0] for t in doc["tensors"]] == sorted(t["stride"][0] for t in doc["tensors"])
    assert {t["stride"][0] for t in doc["tensors"]} == {1, 2, 4, 8, 16, 32}  # EfficientNet-Lite0's stages
    for t in doc["tensors"]:
        assert any(line.split()[:2] == [str(t["depth"]), t["name"]] for line in lines), t["name"]
    finding = doc["finding"]
    assert finding["tensor"] and f"finding: {finding['text']}" in out and "Observation 2" in out
    assert finding["subsampled_by"]["node"] in finding["text"]
    assert sorted(doc["images"]) == sorted(p.name for p in EXAMPLE_IMAGES.iterdir())


def test_the_markdown_command_profiles_again_to_the_same_sums(profiled, tmp_path):
    d, _ = profiled
    text = (d / "p.md").read_text()
    assert "**Finding:**" in text and "| # | tensor |" in text
    command = text.split("```\n")[1].strip()
    args = shlex.split(command)
    assert args[:2] == ["audit-client", "layers"]
    args = [str(EXAMPLE_MODEL) if a == EXAMPLE_MODEL.name else str(EXAMPLE_IMAGES) if a == "IMAGES" else a
            for a in args[2:]]
    assert main([ "layers", *args, "--no-progress", "--json", str(tmp_path / "again.json")]) == 0
    assert json.loads((tmp_path / "again.json").read_text())["sums"] == json.loads((d / "p.json").read_text())["sums"]


@pytest.mark.skipif(not CHROMIUM, reason="no chromium (Debian's package; .ci/run installs it)")
def test_the_page_loads_offline_with_its_plot(profiled, tmp_path):
    d, _ = profiled
    page = d / "p.html"
    text = page.read_text()
    assert text.count("<svg") == 1 and "<script" not in text and "default-src 'none'" in text
    assert "Where the invariance breaks" in text
    log = _chromium(page, tmp_path / "layers.png")
    assert not [line for line in log.splitlines() if page.as_uri() in line]


def test_an_audit_page_includes_the_profile_when_asked(profiled, tmp_path, capsys, monkeypatch):
    d, _ = profiled
    monkeypatch.chdir(tmp_path)  # where a report that could not be rendered is saved
    report = tmp_path / "report.json"
    assert main(["--engine", str(EXAMPLE_MODEL), "--images", str(EXAMPLE_IMAGES), "--protocol", "crop", "--no-progress",
                 "--json", str(report), "--layers", str(d / "p.json"), "--html", str(tmp_path / "a.html"),
                 "--markdown", str(tmp_path / "a.md")]) == 0
    page = (tmp_path / "a.html").read_text()
    assert "Sensitivity by protocol" in page and "Where the invariance breaks" in page
    assert "**Finding:**" in (tmp_path / "a.md").read_text()
    assert main(["report", str(report), "--layers", str(d / "p.json"), "--html", str(tmp_path / "b.html")]) == 0
    assert "Where the invariance breaks" in (tmp_path / "b.html").read_text()
    other = shift_cnn(tmp_path / "other.onnx")
    assert main(["layers", "--engine", str(other), "--images", str(EXAMPLE_IMAGES), "--size", "40", "--no-progress",
                 "--json", str(tmp_path / "other-profile.json")]) == 0
    capsys.readouterr()
    assert main(["report", str(report), "--layers", str(tmp_path / "other-profile.json"), "--html", str(tmp_path / "c.html")]) == 2
    err = capsys.readouterr().err
    assert "profiles another model" in err and "the report is saved at" in err
    assert main(["report", str(report), "--layers", str(report), "--html", str(tmp_path / "d.html")]) == 2
    assert "not a shiftaudit.layers/v2 profile" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--engine", "{plan}"], "profile the ONNX model it was built from"),
    (["--engine", "{missing}"], "does not exist"),
    (["--tensors", "c22"], "no spatial activation 'c22' (did you mean c2"),
    (["--protocol", "crop", "--protocol", "embed-black"], "one protocol"),
    (["--protocol", "scale"], "invalid choice: 'scale'"),
    (["--sweep-pixels", "3"], "unrecognized arguments: --sweep-pixels"),
    (["--rise", "0"], "--rise must be above 0"),
    (["--max-memory", "0"], "--max-memory must be at least 1 MiB"),
    (["--json", "{engine}"], "is the model: choose another name"),
])
def test_a_wrong_input_is_one_line(argv, message, tmp_path, capsys):
    engine = shift_cnn(tmp_path / "net.onnx", subsample="conv")
    plan = tmp_path / "net.plan"
    plan.write_bytes(b"engine")
    paths = {"plan": plan, "missing": tmp_path / "none.onnx", "engine": engine}
    argv = [a.format(**paths) for a in argv]
    base = ["layers", "--images", str(EXAMPLE_IMAGES), "--size", "40", "--no-progress"]
    if "--engine" not in argv:
        base += ["--engine", str(engine)]
    try:
        code = main(base + argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[0] and len(err) <= 2, err  # argparse adds its one hint line


def test_the_python_api_defaults_to_embed_black_and_the_stages(tmp_path):
    doc = profile(shift_cnn(tmp_path / "net.onnx", subsample="conv"), EXAMPLE_IMAGES, {"size": 40}, engine_options=CPU)
    assert doc["config"]["protocols"] == ["embed-black"] and doc["config"]["tensors"] == ["stages"]
    assert [t["name"] for t in doc["tensors"]] == ["input", "r1", "c2", "r3"]
