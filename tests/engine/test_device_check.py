"""The GPU machine's prepared check (bench/device_check.py) as far as a CPU can run it: its agreement and
throughput steps on the CPU, a wheel put together from its parts, and a step that fails recorded while
the next one still runs (a GPU machine is lent for 15 minutes: one failure must not cost the rest)."""
from __future__ import annotations

import re
import subprocess
import sys

from tests.support import ROOT

SCRIPT = ROOT / "bench" / "device_check.py"
sys.path.insert(0, str(SCRIPT.parent))
import device_check  # noqa: E402  (bench/ is not a package)


def test_the_wheel_is_put_together_from_its_parts_in_order(tmp_path):
    data = bytes(range(256)) * 1000
    for k, start in enumerate(range(0, len(data), 70_000)):  # parts 0..3, listed out of order on purpose
        (tmp_path / f"onnxruntime_gpu-1.0-cp311-none-any.whl.part{k}").write_bytes(data[start:start + 70_000])
    (tmp_path / "out").mkdir()
    wheel = device_check.join_parts(str(tmp_path / "*.whl.part*"), tmp_path / "out")
    assert wheel.name == "onnxruntime_gpu-1.0-cp311-none-any.whl" and wheel.read_bytes() == data


def test_on_the_cpu_the_agreement_and_throughput_steps_run_and_a_failed_step_does_not_stop_the_rest(tmp_path):
    out = tmp_path / "results.txt"
    run = subprocess.run([sys.executable, str(SCRIPT), "--steps", "install,agreement,throughput", "--device", "cpu",
                          "--wheel-parts", str(tmp_path / "nothing-*.part*"), "--batches", "16", "--pairs", "1",
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    text = out.read_text()
    assert "-- install: FAILED (FileNotFoundError: no wheel parts match" in text
    assert re.search(r"top-1 agreement 1\.00000 of 60 frames, max \|Δp\| 0\.00e\+00; goals: top-1 >= 0\.999 met", text)
    assert re.search(r"batch 16 on cpu .*: audit [\d.]+ frames/s, bare engine [\d.]+ frames/s on the same 60 frames: "
                     r"ratio [\d.]+", text)
    assert "-- agreement: done" in text and "-- throughput: done" in text
