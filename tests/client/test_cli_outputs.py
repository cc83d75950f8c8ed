"""audit-client never loses an audit: outputs checked before any work, never written over the files the
audit reads, written whole or not at all, saved at a named fallback when a write still fails; argument
errors are one line and a hint; the table says what the model was fed and where that came from."""
from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shiftaudit.client import outputs
from shiftaudit.client.cli import main
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL
from tests.support.models import cnn

QUICK = ["--size", "40", "--protocol", "crop", "--no-progress"]


@pytest.fixture
def model_dir(tmp_path):
    """A copy of the example model with its sidecar and class names, as a user keeps them."""
    for f in (EXAMPLE_MODEL, EXAMPLE_MODEL.with_suffix(".json"), EXAMPLE_MODEL.parent / "imagenet_classes.txt"):
        shutil.copy(f, tmp_path)
    return tmp_path


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_output_that_cannot_be_written_stops_the_run_before_the_audit(tmp_path, capsys):
    model = cnn(tmp_path / "m.onnx", hw=64)
    for path, why in ((tmp_path / "missing" / "r.json", f"folder {tmp_path / 'missing'} does not exist"),
                      (tmp_path, "is a folder, not a file")):
        code, out, err = _cli(capsys, "--engine", model, "--images", EXAMPLE_IMAGES, "--json", path, *QUICK)
        assert code == 2 and why in err and err.count("\n") == 1
        assert out == ""  # no audit ran: no table


def test_a_report_is_never_written_over_the_files_the_audit_reads(model_dir, tmp_path, capsys):
    model = model_dir / "efficientnet_lite0.onnx"
    sidecar = model.with_suffix(".json")
    before = sidecar.read_bytes()
    labels = tmp_path / "labels.csv"
    labels.write_text("cat_chelsea.jpg,281\n")
    for target, what in ((sidecar, "the model's preprocessing sidecar"), (model, "the model"),
                         (labels, "the labels file")):
        code, out, err = _cli(capsys, "--engine", model, "--images", EXAMPLE_IMAGES, "--labels", labels,
                              "--json", target, *QUICK)
        assert code == 2 and f"is {what}: choose another name" in err and out == ""
    assert sidecar.read_bytes() == before
    code, _, err = _cli(capsys, "--engine", model, "--images", EXAMPLE_IMAGES, *QUICK)  # the next run still works
    assert code == 0, err


def test_json_dash_writes_the_report_to_stdout_and_the_table_to_stderr(tmp_path, capsys):
    model = cnn(tmp_path / "m.onnx", hw=64)
    code, out, err = _cli(capsys, "--engine", model, "--images", EXAMPLE_IMAGES, "--json", "-", *QUICK)
    assert code == 0
    assert json.loads(out)["schema"] == "shiftaudit.report/v2"
    assert "P(top-1 change)" in err and not Path("-").exists()


def test_a_write_that_fails_after_the_audit_leaves_the_report_at_a_named_fallback(tmp_path, monkeypatch):
    report = {"schema": "shiftaudit.report/v2", "frames": 2}
    gone = tmp_path / "gone"  # checked while it existed, removed while the audit ran
    gone.mkdir()
    wanted = [outputs.Output("--json", gone / "r.json", "json")]
    outputs.check(wanted, {})
    gone.rmdir()
    monkeypatch.chdir(tmp_path)
    errors = outputs.write(wanted, {"json": lambda: outputs.report_json(report)}, report)
    assert errors[0].startswith(f"--json {gone / 'r.json'}: No such file or directory")
    saved = Path(errors[-1].removeprefix("the report is saved at "))
    assert saved.parent == tmp_path and json.loads(saved.read_text()) == report


def test_outputs_are_written_whole(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("the previous report")
    with pytest.raises(UnicodeEncodeError):  # fails halfway: the old file stays, no temporary file is left
        outputs.write_atomic(target, "a" * 100_000 + "\ud800")
    assert target.read_text() == "the previous report" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_argument_errors_are_one_line_and_a_hint(tmp_path, capsys):
    model = cnn(tmp_path / "m.onnx", hw=64)
    base = ["--engine", model, "--images", EXAMPLE_IMAGES, "--no-progress"]
    cases = [(["--batch", "0"], "batch must lie in 1..4096"),
             (["--protocol", "translate-sweep", "--sweep-step", "0.3"],
              "sweep step 0.3 does not divide 8 pixels into whole steps: try 0.25 or 0.32"),
             (["--server", "127.0.0.1:1", "--token-file", tmp_path / "nope"],
              f"--token-file {tmp_path / 'nope'}: No such file or directory"),
             (["--server", "127.0.0.1:1", "--tls-ca", tmp_path / "nope"], f"--tls-ca {tmp_path / 'nope'}:")]
    for extra, message in cases:
        code = main([str(a) for a in base + extra])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, (extra, err)
    client = Path(sys.executable).with_name("audit-client")
    usage = subprocess.run([client, "--engine", model, "--size", "abc"], capture_output=True, text=True)
    assert usage.returncode == 2
    assert usage.stderr.splitlines() == ["audit-client: error: argument --size: invalid int value: 'abc'",
                                         "audit-client: see audit-client --help"]
    help_text = subprocess.run([client, "--help"], capture_output=True, text=True).stdout
    assert "``" not in help_text and "Exit codes" in help_text


def test_the_table_says_what_the_model_was_fed_and_warns_about_defaults(tmp_path, model_dir, capsys):
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(EXAMPLE_IMAGES / "cat_chelsea.jpg", one)
    code, out, _ = _cli(capsys, "--engine", cnn(tmp_path / "m.onnx", hw=64), "--images", one, *QUICK)
    assert code == 0 and "1 image, 2 frames in" in out
    assert out.startswith("warning: mean, std, pixel_range, channel_order of the model guessed: no option, preset, "
                          "sidecar or ONNX metadata gave them")
    code, out, _ = _cli(capsys, "--engine", model_dir / "efficientnet_lite0.onnx", "--images", one, "--std",
                        "64,64,64", *QUICK)
    assert ("preprocessing: mean [127.0, 127.0, 127.0] std [64.0, 64.0, 64.0] on 0-255 RGB, output logits "
            "(options: std; sidecar: mean, pixel_range, channel_order, output)") in out
    assert "warning" not in out


def test_progress_counts_frames_in_a_log_and_draws_a_bar_on_a_terminal(tmp_path):
    model = cnn(tmp_path / "m.onnx", hw=64)
    command = [Path(sys.executable).with_name("audit-client"), "--engine", model, "--images", EXAMPLE_IMAGES,
               "--size", "40", "--protocol", "crop", "--protocol", "embed-black"]
    log = subprocess.run(command, capture_output=True, text=True)  # stderr is a pipe: plain lines
    assert log.returncode == 0, log.stderr
    lines = log.stderr.splitlines()
    assert re.match(r"\d+/24 frames \(\d+ %\), \d/6 images, [\d.]+ frames/s", lines[0])
    assert lines[-1].startswith("done: 24/24 frames (100 %), 6/6 images")
    leader, follower = pty.openpty()  # stderr a terminal: rich's bar, redrawn in place
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=follower) as proc:
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
    os.close(leader)
    screen = seen.decode(errors="replace")
    assert proc.returncode == 0 and "24/24" in screen and "frames/s" in screen and "\x1b[" in screen
