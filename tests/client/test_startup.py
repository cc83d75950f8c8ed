"""What a command imports: nothing heavy that it does not use. ``audit-client --help`` and a command's own
``--help`` build their parsers from the option groups alone (no NumPy, OpenCV, gRPC, protobuf, ONNX,
matplotlib, Ray, rich); an audit in process imports its engine, images and table (rich), not gRPC (no
--server), matplotlib (no --html), Ray (no --ray) or the onnx package (no --layers, no remediate); a stored
report rendered again needs no engine, no images, no gRPC. Each case runs in a fresh interpreter, as a
user's shell starts it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL

HEAVY = ("numpy", "cv2", "grpc", "google.protobuf", "onnx", "onnxruntime", "matplotlib", "ray", "rich", "jsonschema")
RUN = """
import json, sys
from shiftaudit.client.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:  # argparse's --help
    code = e.code
heavy = sorted({h for h in HEAVY for m in sys.modules if m == h or m.startswith(h + ".")})
print(json.dumps({"exit": code, "heavy": heavy}))
"""


def imported(*argv: str) -> tuple[int, list[str]]:
    """(exit status, the heavy packages imported) of ``audit-client ARGV`` in a fresh interpreter."""
    code = f"HEAVY = {HEAVY!r}\n{RUN}"
    run = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return result["exit"], result["heavy"]


@pytest.mark.parametrize("argv", [["--help"], ["report", "--help"], ["list", "--help"], ["compare", "--help"],
                                  ["layers", "--help"], ["remediate", "--help"], ["build-engine", "--help"]])
def test_help_imports_nothing_heavy(argv):
    assert imported(*argv) == (0, [])


def test_an_audit_in_process_imports_its_engine_and_nothing_it_does_not_use(tmp_path):
    code, heavy = imported("--engine", str(EXAMPLE_MODEL), "--images", str(EXAMPLE_IMAGES), "--protocol", "null",
                           "--pairs-per-image", "1", "--no-progress", "--json", str(tmp_path / "r.json"))
    assert code in (0, 1)  # passed or failed its gates: it ran
    assert (tmp_path / "r.json").is_file()
    assert set(heavy) >= {"numpy", "cv2", "onnxruntime"}
    assert not set(heavy) & {"grpc", "google.protobuf", "matplotlib", "ray", "onnx"}, heavy


def test_a_stored_report_rendered_as_markdown_needs_no_engine(tmp_path):
    report = tmp_path / "r.json"
    imported("--engine", str(EXAMPLE_MODEL), "--images", str(EXAMPLE_IMAGES), "--protocol", "null",
             "--pairs-per-image", "1", "--no-progress", "--json", str(report))
    code, heavy = imported("report", str(report), "--markdown", str(tmp_path / "r.md"))
    assert code in (0, 1) and (tmp_path / "r.md").is_file()
    assert not set(heavy) & {"cv2", "grpc", "google.protobuf", "matplotlib", "ray", "onnx", "onnxruntime"}, heavy
