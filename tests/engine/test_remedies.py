"""The remedies' rewrites against networks built here (docs/remediate.md): blur gives the network built by
hand with BlurPool in the same place, shift-average over the single shift (0, 0) is the original exactly,
every variant is a valid ONNX model that records its remedy, the original file is never changed, and what
cannot be rewritten is one line naming it; then `remediate` end to end, and its variants audited on a
real server."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from shiftaudit.client.cli import main
from shiftaudit.client.remote import AuditClient
from shiftaudit.server.engine.errors import InputError
from shiftaudit.server.engine.files import file_sha256
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import METADATA
from shiftaudit.server.engine.remediate import remediate
from shiftaudit.server.engine.remedy import Remedy, RemedyOptions
from shiftaudit.server.engine.rewrites import REMEDY, rewrite
from tests.client.test_html import CHROMIUM, _chromium
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, assert_valid_report
from tests.support.models import cnn, shift_cnn
from tests.support.server_process import ServerProcess

PRE = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "pixel_range": 255, "output": "logits"}


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _frames(n: int = 3, hw: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3, hw, hw)).astype(np.float32)


def test_blur_gives_the_network_built_by_hand_with_blurpool_in_the_same_place(tmp_path):
    """shift_cnn's conv2 has stride 2, then a ReLU; the hand-built BlurPool network runs conv2 at stride 1,
    the ReLU, then a binomial 3x3 blur of stride 2 (Zhang's ConvBlurPool), with the same weights."""
    strided = onnx.load(str(shift_cnn(tmp_path / "conv.onnx", subsample="conv")))
    by_hand = onnx.load(str(shift_cnn(tmp_path / "blurpool.onnx", subsample="blurpool")))
    variant, record = rewrite(strided, Remedy("blur"), PRE)
    assert record["rewritten"] == [{"node": "conv2", "op": "Conv", "stride": [2, 2], "blur_after": "Relu"}]
    x = _frames()
    np.testing.assert_allclose(_run(variant, x), _run(by_hand, x), rtol=1e-5, atol=1e-5)
    assert not np.allclose(_run(strided, x), _run(by_hand, x), atol=1e-3)  # the test can tell them apart


def test_shift_average_over_the_single_shift_is_the_original_exactly(tmp_path):
    model = onnx.load(str(cnn(tmp_path / "m.onnx", hw=48, stride=2)))
    x = _frames()
    single, record = rewrite(model, Remedy("shift-average", grid=1), PRE)
    assert record["shifts"] == [[0, 0]] and np.array_equal(_run(single, x), _run(model, x))
    # a grid of 2: the mean of the probabilities of the four shifted inputs (edge pixels repeated)
    four, _ = rewrite(model, Remedy("shift-average", grid=2), PRE)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    expected = []
    for dy in range(2):
        for dx in range(2):
            logits = _run(model, np.ascontiguousarray(padded[:, :, 1 - dy:1 - dy + 48, 1 - dx:1 - dx + 48]))
            e = np.exp(logits - logits.max(1, keepdims=True))
            expected.append(e / e.sum(1, keepdims=True))
    np.testing.assert_allclose(_run(four, x), np.mean(expected, axis=0), rtol=1e-5, atol=1e-6)


def test_shift_average_of_a_model_ending_in_softmax_averages_its_probabilities(tmp_path):
    """With the output kind left to auto, a graph that ends in a Softmax gives probabilities: they are
    averaged as they are, not put through a second softmax."""
    model = onnx.load(str(cnn(tmp_path / "m.onnx", hw=48, stride=2, softmax=True)))
    x = _frames()
    four, _ = rewrite(model, Remedy("shift-average", grid=2), {**PRE, "output": "auto"})
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    expected = [_run(model, np.ascontiguousarray(padded[:, :, 1 - dy:1 - dy + 48, 1 - dx:1 - dx + 48]))
                for dy in range(2) for dx in range(2)]
    np.testing.assert_allclose(_run(four, x), np.mean(expected, axis=0), rtol=1e-5, atol=1e-6)


def test_input_blur_is_a_reflected_binomial_of_the_input(tmp_path):
    model = onnx.load(str(cnn(tmp_path / "m.onnx", hw=48, stride=2)))
    x = _frames()
    blurred = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    taps = np.array([1, 2, 1], np.float32) / 4
    rows = taps[0] * blurred[:, :, :-2] + taps[1] * blurred[:, :, 1:-1] + taps[2] * blurred[:, :, 2:]
    expected_in = taps[0] * rows[..., :-2] + taps[1] * rows[..., 1:-1] + taps[2] * rows[..., 2:]
    variant, _ = rewrite(model, Remedy("input-blur"), PRE)
    np.testing.assert_allclose(_run(variant, x), _run(model, expected_in), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("remedy", [Remedy("blur"), Remedy("blur", size=5, at=("first:2",)), Remedy("input-blur"),
                                    Remedy("shift-average", grid=3)])
def test_every_variant_is_a_valid_model_that_keeps_the_opset_and_records_its_remedy(remedy):
    original = onnx.load(str(EXAMPLE_MODEL))
    variant, record = rewrite(original, remedy, PRE)
    onnx.checker.check_model(variant, full_check=True)
    onnx.shape_inference.infer_shapes(variant, check_type=True, strict_mode=True)
    assert list(variant.opset_import) == list(original.opset_import)
    props = {p.key: p.value for p in variant.metadata_props}
    assert json.loads(props[REMEDY]) == record and record["kind"] == remedy.kind
    assert json.loads(props[METADATA])["output"] == ("probabilities" if remedy.kind == "shift-average" else "logits")
    x = np.zeros((2, 3, 224, 224), np.float32)
    assert _run(variant, x).shape == (2, 1000)


def _max_pool_ceil(path: Path) -> Path:
    nodes = [helper.make_node("MaxPool", ["input"], ["pooled"], name="pool", kernel_shape=[2, 2], strides=[2, 2],
                              ceil_mode=1),
             helper.make_node("GlobalAveragePool", ["pooled"], ["gap"]), helper.make_node("Flatten", ["gap"], ["out"])]
    graph = helper.make_graph(nodes, "ceil", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_what_cannot_be_rewritten_is_one_line_naming_it(tmp_path):
    strided = onnx.load(str(shift_cnn(tmp_path / "conv.onnx", subsample="conv")))
    for model, remedy, says in (
            (strided, Remedy("blur", at=("nowhere",)), "blur at 'nowhere': no node or tensor of the model has that name"),
            (strided, Remedy("blur", at=("relu1",)), "blur at 'relu1': not a subsampling op"),
            (strided, Remedy("blur", at=("first:4",)), "blur at first:4: the model has 1 subsampling ops"),
            (onnx.load(str(shift_cnn(tmp_path / "none.onnx"))), Remedy("blur"),
             "the model has no subsampling op (a strided Conv, MaxPool or AveragePool): blur has nothing to rewrite"),
            (onnx.load(str(_max_pool_ceil(tmp_path / "ceil.onnx"))), Remedy("blur"),
             "pool: blur rewrites ops with explicit pads (auto_pad NOTSET) and ceil_mode 0")):
        with pytest.raises(InputError) as e:
            rewrite(model, remedy, PRE)
        assert str(e.value) == says and "\n" not in str(e.value)
    for bad, says in (({"kind": "rotate"}, "unknown remedy 'rotate'"), ({"kind": "blur", "size": 4}, "3 or 5 taps")):
        with pytest.raises(InputError, match=says):
            Remedy(**bad)


def test_remediate_end_to_end_never_changes_the_original_and_its_variants_audit_on_a_server(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    model = shift_cnn(tmp_path / "models" / "conv.onnx", subsample="conv", hw=64)
    model.with_suffix(".json").write_text(json.dumps(PRE))
    before = file_sha256(model)
    written = tmp_path / "variants"
    out = tmp_path / "r.json"
    labels = tmp_path / "labels.csv"
    labels.write_text("cat_chelsea.jpg,3\ncoffee_cup.jpg,4\nmotorcycle_right.jpg,7\n")
    code = main(["remediate", "--engine", str(model), "--images", str(EXAMPLE_IMAGES), "--size", "40", "--write",
                 str(written), "--json", str(out), "--html", str(tmp_path / "r.html"), "--markdown",
                 str(tmp_path / "r.md"), "--labels", str(labels), "--no-progress"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert file_sha256(model) == before
    doc = json.loads(out.read_text())
    assert_valid_report(doc, "remediate")
    assert [v["name"] for v in doc["variants"]] == ["blur3", "input-blur3", "shift-average2x2"]
    assert {v["name"] for v in doc["variants"]} == {line.split()[0] for line in printed.out.splitlines()[3:6]}
    for v in doc["variants"]:
        assert Path(v["file"]).is_file() and v["cost"]["frames_per_second"] > 0
        assert 0 <= v["fidelity"]["value"] <= 1 and v["fidelity"]["frames"] == 6 * 5
    original = doc["original"]["accuracy"]
    assert original["frames"] == 3 * 5 and 0 <= original["value"] <= 1  # three labelled images, five units each
    for v in doc["variants"]:
        assert v["accuracy_change"] == pytest.approx(v["accuracy"]["value"] - original["value"], abs=1e-6)
    assert "Before acting on it" in (tmp_path / "r.html").read_text()
    if CHROMIUM:  # the page loads offline, no message of its own, and draws
        log = _chromium(tmp_path / "r.html", tmp_path / "r.png")
        assert not [line for line in log.splitlines() if (tmp_path / "r.html").as_uri() in line]
    assert "| blur3 |" in (tmp_path / "r.md").read_text()
    server = ServerProcess(written, tmp_path / "state").start()  # the variants are ONNX files: a server audits them
    try:
        with AuditClient(server.target) as client:
            for name in (v["name"] for v in doc["variants"]):
                report = client.run(f"conv.{name}.onnx", AuditOptions(size=40, protocols=("crop",)),
                                    images=EXAMPLE_IMAGES)
                assert report["model"]["preprocessing"]["origins"]["mean"] == "metadata"
                assert report["model"]["output_kind"] == ("probabilities" if name.startswith("shift") else "logits")
    finally:
        server.stop()


def test_a_file_that_is_not_onnx_is_refused_in_one_line(tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_text("not a model\n")
    with pytest.raises(InputError, match=r"model.onnx: not an ONNX model \(\w+\); remedies rewrite ONNX graphs"):
        remediate(fake, EXAMPLE_IMAGES, AuditOptions(), RemedyOptions(remedies=("blur",)))


def test_with_layers_each_variant_says_where_its_invariance_breaks_now(tmp_path):
    """The strided network's break is at conv2's output; after blur, the profile of the variant is taken
    the same way (its finding may move or vanish: whatever it is, it is the variant's)."""
    from shiftaudit.client import RemedyOptions as Exported
    from shiftaudit.client import remediate as exported

    model = shift_cnn(tmp_path / "conv.onnx", subsample="conv", hw=64)
    model.with_suffix(".json").write_text(json.dumps(PRE))
    doc = exported(model, EXAMPLE_IMAGES, AuditOptions(size=40, protocols=("embed-black",)),
                   Exported(remedies=("blur",), profile=True))
    assert_valid_report(doc, "remediate")
    assert doc["original"]["layers"]["tensor"] == "c2"
    finding = doc["variants"][0]["layers"]
    assert finding is not None and finding["tensor"] != "c2" and "text" in finding
