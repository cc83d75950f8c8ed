"""Where a model's preprocessing comes from: options over presets over the sidecar over the ONNX model's own
metadata_props over ImageNet's defaults, each value's origin recorded; and every command that runs a model
says first what it guessed."""
from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from shiftaudit.client.cli import main
from shiftaudit.server.engine.errors import OptionError
from shiftaudit.server.engine.preprocessing import PRESETS, load_preprocessing
from tests.support import EXAMPLE_IMAGES
from tests.support.models import cnn


def _with_metadata(path: Path, **props: str) -> Path:
    model = onnx.load(str(path))
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key.replace("__", "."), value
    onnx.save(model, str(path))
    return path


def test_each_value_comes_from_the_first_source_that_gives_it(tmp_path):
    model = cnn(tmp_path / "m.onnx", hw=64)
    pre = load_preprocessing(model)
    assert pre.mean == PRESETS["imagenet"]["mean"] and set(pre.origins.values()) == {"default"}
    _with_metadata(model, Image__NominalPixelRange="Normalized_1_1", Image__BitmapPixelFormat="Bgr8")
    pre = load_preprocessing(model)  # ONNX's own image metadata: [-1, 1], BGR
    assert (pre.mean, pre.std, pre.pixel_range, pre.channel_order) == ((0.5,) * 3, (0.5,) * 3, 1.0, "BGR")
    assert pre.origins == {"mean": "metadata", "std": "metadata", "pixel_range": "metadata",
                           "channel_order": "metadata", "output": "default"}
    model.with_suffix(".json").write_text('{"preset": "caffe", "channel_order": "RGB"}')
    pre = load_preprocessing(model)  # the sidecar's preset, its own value over it, over the metadata
    assert (pre.mean, pre.pixel_range, pre.channel_order) == (PRESETS["caffe"]["mean"], 255.0, "RGB")
    assert pre.origins["mean"] == "sidecar" and pre.to_json()["preset"] == "caffe"
    pre = load_preprocessing(model, preset="zero-one", std=(2.0, 2.0, 2.0))  # the options over everything
    assert (pre.mean, pre.std, pre.pixel_range) == ((0.0,) * 3, (2.0,) * 3, 1.0)
    assert pre.origins == {"mean": "preset", "std": "options", "pixel_range": "preset", "channel_order": "preset",
                           "output": "default"}


def test_our_own_metadata_key_and_what_cannot_be_meant(tmp_path):
    model = _with_metadata(cnn(tmp_path / "m.onnx", hw=64), shiftaudit__preprocessing=json.dumps(
        {"mean": [127, 127, 127], "std": [128, 128, 128], "pixel_range": 255}))
    pre = load_preprocessing(model)
    assert (pre.mean, pre.std, pre.pixel_range) == ((127,) * 3, (128,) * 3, 255) and pre.origins["std"] == "metadata"
    bad = _with_metadata(cnn(tmp_path / "bad.onnx", hw=64), shiftaudit__preprocessing='{"std": [0, 1, 1]}')
    with pytest.raises(OptionError, match="metadata_props shiftaudit.preprocessing"):
        load_preprocessing(bad)
    with pytest.raises(OptionError, match="preset must be one of imagenet, inception, zero-one, caffe"):
        load_preprocessing(model, preset="vgg")
    assert "preset" not in load_preprocessing(model).to_json()  # reports before presets stay as they were


def test_every_command_that_runs_a_model_says_first_what_it_guessed(tmp_path, capsys):
    model = cnn(tmp_path / "m.onnx", hw=64, stride=2)
    common = ["--images", str(EXAMPLE_IMAGES), "--size", "40", "--protocol", "embed-black", "--no-progress"]
    guessed = "warning: mean, std, pixel_range, channel_order of "
    commands = {"audit": ["--engine", str(model), *common],
                "compare": ["compare", "--engine", str(model), "--engine", str(model), *common],
                "layers": ["layers", "--engine", str(model), *common]}
    for name, argv in commands.items():
        assert main(argv) == 0, name
        out = capsys.readouterr().out
        assert out.startswith(guessed), (name, out[:200])
        assert "--preset imagenet|inception|zero-one|caffe" in out.splitlines()[0]
        assert main([*argv, "--preset", "imagenet"]) == 0  # said: nothing guessed
        out = capsys.readouterr().out
        assert "guessed" not in out, name
    md = tmp_path / "r.md"
    assert main([*commands["audit"], "--markdown", str(md)]) == 0
    text = md.read_text()
    assert text.index("> **Warning**: Mean, std, pixel_range, channel_order") < text.index("| protocol |")
    report = tmp_path / "r.json"
    assert main([*commands["audit"], "--preset", "inception", "--json", str(report)]) == 0
    rerun = json.loads(report.read_text())
    assert rerun["model"]["preprocessing"]["preset"] == "inception"
    capsys.readouterr()
