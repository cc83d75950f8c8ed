"""The per-layer shiftability profile against known answers (docs/layers.md): networks built here whose
profile theory fixes, BlurPool against plain striding, and the example model's profile under sharding
and a repeated seed."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from shiftaudit.server.engine.errors import InputError, OptionError
from shiftaudit.server.engine.images import image_sources
from shiftaudit.server.engine.layers import LayerOptions, merge_profiles, profile_layers
from shiftaudit.server.engine.layers.shiftability import Sums, interior, translate, whole_move
from shiftaudit.server.engine.options import AuditOptions
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, assert_valid_report, write_image
from tests.support.models import shift_cnn, strided_stack

# frames for the built networks: 32-pixel images, content in the middle 16x16 with a black halo of 8
# pixels, embedded unresampled (size 32) on a 48x48 canvas; black is 0 after the preprocessing
KNOWN = AuditOptions(protocols=("embed-black",), size=32, pairs_per_image=2)
MEASURES = ("pooled_invariance", "shiftability", "equivariance")


@pytest.fixture(scope="module")
def haloed(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("haloed")
    rng = np.random.default_rng(7)
    for i in range(4):
        pixels = np.zeros((32, 32, 3), np.uint8)
        pixels[8:24, 8:24] = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        write_image(d / f"noise{i}.png", pixels)
    return d


@pytest.fixture(scope="module")
def nets(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("nets")
    out = {}
    for kind in ("none", "conv", "blurpool"):
        model = shift_cnn(d / f"{kind}.onnx", subsample=kind)
        model.with_suffix(".json").write_text('{"mean": [0, 0, 0], "std": [1, 1, 1], "pixel_range": 255}')
        out[kind] = model
    return out


def _profile(model: Path, images: Path, options: AuditOptions = KNOWN, **layers) -> dict:
    doc = profile_layers(model, image_sources(images), options, LayerOptions(**layers), device="cpu")
    assert_valid_report(doc, "layers")
    return doc


def _rows(doc: dict) -> dict[str, dict]:
    return {row["name"]: row for row in doc["tensors"]}


def test_stride_one_network_is_exactly_invariant_at_every_tensor(nets, haloed):
    doc = _profile(nets["none"], haloed, tensors=("all",))
    assert [r["name"] for r in doc["tensors"]] == ["input", "c1", "r1", "c2", "r2", "c3", "r3"]
    for row in doc["tensors"]:
        assert row["stride"] == [1, 1] and row["subsampled_by"] is None
        for m in MEASURES:
            assert row[m]["pairs"] == 8 and row[m]["undefined"] == 0
            assert row[m]["value"] <= 1e-5, (row["name"], m, row[m])
    assert doc["finding"]["tensor"] is None
    assert doc["steps"] == [0, 1]  # stride 1 everywhere: the one-pixel shift is the whole-stride shift


def test_a_strided_convolution_breaks_invariance_from_its_output_on(nets, haloed):
    doc = _profile(nets["conv"], haloed, tensors=("all",))
    rows = _rows(doc)
    assert doc["steps"] == [0, 1, 2]
    for name in ("input", "c1", "r1"):
        assert all(rows[name][m]["value"] <= 1e-5 for m in MEASURES), name
    for name in ("c2", "r2", "c3", "r3"):
        row = rows[name]
        assert row["stride"] == [2, 2] and row["subsampled_by"] == {"node": "conv2", "op": "Conv"}
        assert row["pooled_invariance"]["ci95"][0] > 1e-3, (name, row["pooled_invariance"])
        assert row["shiftability"]["ci95"][0] > 0.05, (name, row["shiftability"])
        assert row["equivariance"]["value"] <= 1e-5, (name, row["equivariance"])  # a shift of exactly the stride
    found = doc["finding"]
    assert found["tensor"] == "c2" and found["subsampled_by"] == {"node": "conv2", "op": "Conv"}
    assert "conv2" in found["text"] and "antialias" in found["text"] and "Observation 2" in found["caveat"]


def test_blurpool_is_more_shiftable_right_after_the_subsampling(nets, haloed):
    plain = _rows(_profile(nets["conv"], haloed, tensors=("c2",)))["c2"]["shiftability"]
    blurred_doc = _profile(nets["blurpool"], haloed, tensors=("all",))
    blurred = _rows(blurred_doc)["b2"]
    assert blurred["subsampled_by"] == {"node": "blurpool", "op": "Conv"}
    assert blurred["shiftability"]["ci95"][1] < plain["ci95"][0], (blurred["shiftability"], plain)
    assert blurred_doc["finding"]["subsampled_by"]["node"] == "blurpool"


def test_stages_are_the_subsampling_outputs_and_the_last_tensor_of_each_stride(nets, haloed):
    doc = _profile(nets["blurpool"], haloed)
    # r2: the last tensor at stride 1; b2: the subsampling's output; r3: the last at stride 2 and before pooling
    assert [r["name"] for r in doc["tensors"]] == ["input", "r2", "b2", "r3"]
    assert [r["receptive_field"] for r in doc["tensors"]] == [1, 5, 7, 11]


def test_the_example_model_profile_merges_exactly_over_shards_and_repeats_with_its_seed(tmp_path):
    options = AuditOptions(protocols=("crop",), seed=3)
    names = sorted(p.name for p in EXAMPLE_IMAGES.iterdir())
    halves = [tmp_path / "a", tmp_path / "b"]
    for i, name in enumerate(names):
        halves[i % 2].mkdir(exist_ok=True)
        (halves[i % 2] / name).write_bytes((EXAMPLE_IMAGES / name).read_bytes())
    whole = profile_layers(EXAMPLE_MODEL, image_sources(EXAMPLE_IMAGES), options, device="cpu")
    again = profile_layers(EXAMPLE_MODEL, image_sources(EXAMPLE_IMAGES), options, device="cpu")
    shards = [profile_layers(EXAMPLE_MODEL, image_sources(h), options, device="cpu") for h in halves]
    merged = merge_profiles(shards)
    assert_valid_report(merged, "layers")
    assert whole["sums"] == again["sums"] == merged["sums"]
    assert [r["shiftability"] for r in whole["tensors"]] == [r["shiftability"] for r in merged["tensors"]]
    assert whole["finding"] == merged["finding"] and sorted(merged["images"]) == sorted(whole["images"])
    assert whole["units"] == len(names) and whole["frames"] == len(names) * len(whole["steps"])
    with pytest.raises(InputError, match="more than one shard"):
        merge_profiles([shards[0], shards[0]])
    other_seed = profile_layers(EXAMPLE_MODEL, image_sources(EXAMPLE_IMAGES), AuditOptions(protocols=("crop",)),
                                device="cpu")
    assert other_seed["sums"] != whole["sums"]


def test_the_batch_budget_bounds_the_activations_held(nets, haloed, tmp_path):
    small = _profile(nets["conv"], haloed, tensors=("all",), max_memory_mib=1)
    large = _profile(nets["conv"], haloed, tensors=("all",))
    assert small["memory"]["units_per_batch"] == 1 and large["memory"]["units_per_batch"] > 1
    assert small["memory"]["batch_bytes"] <= 2**20 < 2 * small["memory"]["batch_bytes"]
    assert not small["memory"]["over_budget"] and not large["memory"]["over_budget"]
    assert small["sums"] == large["sums"]  # the batching changes nothing measured
    wide = shift_cnn(tmp_path / "wide.onnx", subsample="conv", hw=128)  # one unit's activations: 2.6 MiB
    wide.with_suffix(".json").write_text(nets["conv"].with_suffix(".json").read_text())
    over = _profile(wide, haloed, tensors=("all",), max_memory_mib=1)["memory"]
    assert over["units_per_batch"] == 1 and over["over_budget"] and over["batch_bytes"] > 2**20


def test_what_cannot_be_profiled_is_refused_in_one_line(nets, haloed, tmp_path):
    engine = tmp_path / "model.plan"
    engine.write_bytes(b"not really an engine")
    with pytest.raises(InputError, match="profile the ONNX model it was built from"):
        _profile(engine, haloed)
    with pytest.raises(OptionError, match="one protocol"):
        _profile(nets["none"], haloed, AuditOptions(protocols=("embed-black", "crop")))
    with pytest.raises(OptionError, match="one protocol"):
        _profile(nets["none"], haloed, AuditOptions(protocols=("scale",)))
    with pytest.raises(InputError, match=r"no spatial activation 'c22' \(did you mean c2"):
        _profile(nets["conv"], haloed, tensors=("c22",))
    with pytest.raises(InputError, match="stands alone"):
        _profile(nets["conv"], haloed, tensors=("all", "c2"))


def test_band_limited_translation_is_exact_for_whole_cells_and_interpolates_between():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2, 10, 12))
    moved = translate(f, (1, -2))
    assert np.abs(moved[:, 1:, :-2] - f[:, :-1, 2:]).max() < 1e-12
    assert np.array_equal(whole_move(f, (1, -2))[:, 1:, :-2], f[:, :-1, 2:])
    y, x = np.mgrid[0:40, 0:40]
    smooth = np.cos(2 * np.pi * (0.05 * y + 0.03 * x))[None]
    expected = np.cos(2 * np.pi * (0.05 * (y - 0.5) + 0.03 * (x - 0.25)))[None]
    by, bx = interior((40, 40), None, (1, 1), (0.5, 0.25))
    assert (by, bx) == (10, 10)  # a quarter of the side, plus the cell the move brings in
    assert np.abs(translate(smooth, (0.5, 0.25)) - expected)[:, by:-by, bx:-bx].max() < 1e-3


def test_a_tensor_s_interval_takes_the_image_as_the_unit():
    """Two pairs on each of four images: the clustered interval is the t interval (3 degrees of freedom,
    3.182446305 from tables) of the four image means, not the normal one of eight pairs; and a profile
    made before clustering (four numbers a measure) reads each pair as an image."""
    values = [[0.40, 0.42], [0.60, 0.64], [0.35, 0.37], [0.50, 0.48]]
    total = Sums()
    for image in values:
        one = Sums()
        for v in image:
            one.add(v)
        total.add_image(one)
    means = [sum(v) / 2 for v in values]
    mean, sd = float(np.mean(means)), float(np.std(means, ddof=1))
    summary = total.summary()
    assert summary["value"] == pytest.approx(mean, abs=1e-9) and summary["pairs"] == 8
    assert summary["ci95"] == pytest.approx([mean - 3.182446305 * sd / 2, mean + 3.182446305 * sd / 2], abs=1e-8)
    flat = [v for image in values for v in image]
    old = Sums.from_json(total.to_json()[:4]).summary()  # n = 8 pairs as images: t on 7 degrees of freedom
    half = 2.364624252 * float(np.std(flat, ddof=1)) / math.sqrt(8)
    assert old["ci95"] == pytest.approx([float(np.mean(flat)) - half, float(np.mean(flat)) + half], abs=1e-8)
    lone = Sums()
    lone.add_image(Sums(2, 0, total.total, total.squares))
    assert lone.summary()["ci95"][1] is None  # one image: no upper end


def test_the_stride_is_the_ops_step_not_the_canvas_over_the_size(haloed, tmp_path):
    """240 pixels through five stride-2 stages give 8 cells: 240/8 = 30, but the network's stride is 32 (the
    padding rounds 7.5 cells up), and its equivariance is measured with a shift of 32."""
    model = strided_stack(tmp_path / "stack.onnx")
    model.with_suffix(".json").write_text('{"mean": [0, 0, 0], "std": [1, 1, 1], "pixel_range": 255}')
    doc = _profile(model, haloed, tensors=("all",))
    rows = {r["name"]: r for r in doc["tensors"]}
    assert [rows[f"r{k}"]["stride"] for k in range(5)] == [[2, 2], [4, 4], [8, 8], [16, 16], [32, 32]]
    assert rows["r4"]["shape"][1:] == [8, 8]
    assert rows["r4"]["equivariance"]["value"] is not None  # measured at the whole stride 32
    assert 32 in doc["steps"] and 30 not in doc["steps"]
