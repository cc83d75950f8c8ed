"""The audit's numbers, pinned: every protocol (a sub-pixel translate sweep among them) on the example
model and photographs must give the very tallies and protocol summaries recorded in
``golden_audit.json`` before the engine and the service were taken apart (issue 9), bit for bit.

Three layers, so a failure says which one moved:
- the frames: the sha256 of every rendered model input, in audit order, as the CPU renderer (the kernels'
  host build: exact wherever it compiles) and as the NumPy reference (exact anywhere) render them;
- the engine: the sha256 of ONNX Runtime's outputs on those frames, and of the probabilities the audit
  scores (their softmax). Their bits depend on the CPU's instruction set and the releases (ONNX Runtime's
  kernels; NumPy's float64 exp, which is its own SIMD code on AVX-512 hosts and the C library's elsewhere:
  one unit in the last place apart, seen on 2026-12-03), so where either differs from the recording
  machine's the tallies cannot be compared bit for bit, and that part is skipped, saying so;
- the audit: ``protocols`` and ``tallies`` of the report, compared exactly; its ``config``, key order
  included (it is the text of stored reports); the sha256 of its per-image records and skips.

The frames, outputs, protocols and tallies were recorded with ``python -m tests.engine.test_golden``
before anything moved; ``config`` and ``records_sha256`` were added from the same code (commit ad9db2d).
They were recorded again on an AVX2 host (commit after 7eabd80, no code changed), with the probabilities'
fingerprint: the AVX-512 host's tallies differed from its in the 2^-52 fixed-point sums of two sweeps by
one unit, as NumPy's exp does there. Issue 30 made the kernels' host build the CPU renderer, whose inpainted
frames sum in the GPU's order (within 1e-9 of the reference's MAC here); everything was recorded again then,
on the development machine (2-core AVX-512, the CI machine's kind), after checking that the old and the new
code differ there in embed-inpaint's tallies and protocol summary alone.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from shiftaudit.client import audit
from shiftaudit.server.engine.files import list_images
from shiftaudit.server.engine.images import read
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import load_preprocessing
from shiftaudit.server.engine.protocols import PROTOCOLS, plan
from shiftaudit.server.engine.render.cpu import CpuRenderer, reference_batch
from shiftaudit.server.engine.runners import EngineOptions, open_runner
from shiftaudit.server.engine.score import detect_output_kind, probabilities

CPU = EngineOptions(device="cpu")

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "efficientnet_lite0.onnx"
IMAGES = ROOT / "examples" / "images"
GOLDEN = Path(__file__).with_name("golden_audit.json")
OPTIONS = AuditOptions(protocols=PROTOCOLS, seed=3, sweep_pixels=2, sweep_step=0.5, size_sweep=(60, 0, 24))


@cache  # the same bits for every test of a run: computed once (the goldens of the commands check them too)
def fingerprints() -> dict[str, str]:
    """sha256 of the frames of every protocol (images in name order, units and frames in plan order) as
    the CPU renderer renders them and as the NumPy reference does, of the engine's outputs on the CPU
    renderer's and of the probabilities scored from those, batch by batch; and which renderer that was."""
    cfg = replace(OPTIONS, canvas=(224, 224))
    pre = load_preprocessing(MODEL)
    renderer = CpuRenderer()
    hashes = {key: hashlib.sha256() for key in ("frames", "reference_frames", "outputs", "probabilities")}
    with open_runner(MODEL) as runner:
        spec = runner.input_spec()
        for path in list_images(IMAGES):
            image = read(path, path.name)
            for protocol in PROTOCOLS:
                frames = [(image, f) for u in plan(protocol, image.size, image.digest, cfg) for f in u.frames]
                batch = renderer.render(frames, pre.normalisation(), spec.layout, spec.dtype)
                hashes["frames"].update(batch.to_host().tobytes())
                reference = reference_batch(frames, pre.normalisation(), spec.layout, spec.dtype)
                hashes["reference_frames"].update(reference.to_host().tobytes())
                out = runner.infer(batch)
                hashes["outputs"].update(out.tobytes())
                hashes["probabilities"].update(probabilities(out, detect_output_kind(out)).tobytes())
    return {"renderer": renderer.name, **{f"{key}_sha256": h.hexdigest() for key, h in hashes.items()}}


def golden_report() -> dict:
    return audit(MODEL, IMAGES, OPTIONS, engine_options=CPU)


def test_every_protocol_gives_the_recorded_tallies_bit_for_bit():
    golden = json.loads(GOLDEN.read_text())
    got = fingerprints()
    assert got["reference_frames_sha256"] == golden["reference_frames_sha256"], "the NumPy reference's frames changed"
    if got["renderer"] != golden["renderer"]:
        pytest.skip(f"rendered on {got['renderer']}, recorded on {golden['renderer']}: the reference's frames were "
                    "checked, the rest cannot be")
    assert got["frames_sha256"] == golden["frames_sha256"], "the rendered frames changed"
    for key, what in (("outputs_sha256", "ONNX Runtime computes"), ("probabilities_sha256", "NumPy's softmax gives")):
        if got[key] != golden[key]:
            pytest.skip(f"{what} other bits on this machine than on the one that recorded the golden tallies (CPU "
                        "instruction set or release); the frames were checked, the tallies cannot be")
    report = json.loads(json.dumps(golden_report()))  # as a stored report reads back
    assert report["tallies"] == golden["tallies"]
    assert report["protocols"] == golden["protocols"]
    assert list(report["config"].items()) == list(golden["config"].items())
    records = json.dumps({"images": report["images"], "skipped": report["skipped"]}).encode()
    assert hashlib.sha256(records).hexdigest() == golden["records_sha256"]


if __name__ == "__main__":
    report = golden_report()
    records = json.dumps({"images": report["images"], "skipped": report["skipped"]}).encode()
    record = {**fingerprints(), **{k: report[k] for k in ("protocols", "tallies", "config")},
              "records_sha256": hashlib.sha256(records).hexdigest()}
    GOLDEN.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
