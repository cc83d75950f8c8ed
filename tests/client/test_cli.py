"""audit-client end to end: the example model, bad inputs, gates, exit codes, reproducibility."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from shiftaudit.client.cli import main
from shiftaudit.server.engine.images import read
from shiftaudit.server.engine.render import gpu_renderer
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, write_image
from tests.support.models import cnn, feature_map, not_a_number


@pytest.fixture
def small_model(tmp_path):
    return cnn(tmp_path / "small.onnx", hw=64, stride=2)


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args] + ["--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_example_model_audit_writes_the_v1_report(example_images, tmp_path, capsys):
    """The README's first command, through the installed console script."""
    out = tmp_path / "report.json"
    proc = subprocess.run([Path(sys.executable).with_name("audit-client"), "--engine", EXAMPLE_MODEL,
                           "--images", example_images, "--json", out], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "embed-black" in proc.stdout and "P(top-1 change)" in proc.stdout
    r = json.loads(out.read_text())
    assert r["schema"] == "shiftaudit.report/v2" and r["config"]["seed"] == 0
    assert r["model"]["output_kind"] == "logits" and r["model"]["input"]["height"] == 224
    assert set(r["protocols"]) == {"crop", "embed-black", "embed-inpaint", "scale", "null"}
    for p in r["protocols"].values():
        assert p["pairs"] == 6
        lo, hi = p["p_top1_change"]["ci95"]
        assert lo <= p["p_top1_change"]["value"] <= hi and 0 <= p["mac"]["value"] <= 1
    assert r["protocols"]["null"]["p_top1_change"]["value"] == 0  # CPU inference is deterministic
    cat = next(i for i in r["images"] if i["image"] == "cat_chelsea.jpg")
    assert "cat" in cat["units"][0]["top1_names"][0]


def test_gates_and_exit_codes(small_model, example_images, capsys):
    args = ["--engine", small_model, "--images", example_images, "--protocol", "embed-black", "--size", "40"]
    code, out, _ = _cli(capsys, *args, "--max-p-top1-change", "1")
    assert code == 0 and "pass" in out
    code, out, _ = _cli(capsys, *args, "--max-mac", "0")
    assert code == 1 and "FAIL: mac" in out
    code, out, _ = _cli(capsys, *args, "--max-p-top1-change", "0.35", "--gate-on", "upper")
    assert code == 1 and "upper 95%" in out  # 6 pairs cannot bound it below 0.39, even with no change


def test_bad_images_are_skipped_and_listed_or_fatal_when_strict(small_model, example_images, tmp_path, capsys):
    (example_images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (example_images / "notes.txt").write_text("not an image")
    (example_images / "empty.png").write_bytes(b"")
    write_image(example_images / "tiny.png", np.full((20, 30, 3), 128, np.uint8))
    out_json = tmp_path / "r.json"
    code, out, err = _cli(capsys, "--engine", small_model, "--images", example_images, "--size", "40",
                          "--protocol", "crop", "--protocol", "embed-black", "--json", out_json)
    assert code == 0, err
    r = json.loads(out_json.read_text())
    reasons = {s["image"]: s["reason"] for s in r["skipped"]}
    assert set(reasons) == {"broken.jpg", "notes.txt", "empty.png", "tiny.png"}
    assert "smaller than the embedded size 40" in reasons["tiny.png"]
    assert r["protocols"]["crop"]["pairs"] == 7  # tiny.png still serves the crop protocol
    assert r["protocols"]["embed-black"]["pairs"] == 6
    assert "skipped 3 unusable, 1 too small for embed-black: " in out  # counted by reason
    code, _, err = _cli(capsys, "--engine", small_model, "--images", example_images, "--size", "40", "--strict")
    assert code == 2 and err.count("\n") == 1 and "broken.jpg" in err


def test_grayscale_rgba_and_16bit_images_are_audited(small_model, tmp_path, capsys):
    d = tmp_path / "odd"
    d.mkdir()
    rng = np.random.default_rng(0)
    write_image(d / "gray.png", rng.integers(0, 256, (90, 120), dtype=np.uint8))
    write_image(d / "rgba.png", rng.integers(0, 256, (90, 120, 4), dtype=np.uint8))
    write_image(d / "deep.png", rng.integers(0, 65536, (90, 120, 3), dtype=np.uint16))
    write_image(d / "deep_gray.tiff", rng.integers(0, 65536, (90, 120), dtype=np.uint16))
    out_json = tmp_path / "r.json"
    code, _, err = _cli(capsys, "--engine", small_model, "--images", d, "--size", "40", "--json", out_json)
    assert code == 0, err
    r = json.loads(out_json.read_text())
    assert not r["skipped"] and len(r["images"]) == 4
    rgba = read(d / "rgba.png").pixels
    assert rgba.shape == (90, 120, 3)
    raw = cv2.imread(str(d / "rgba.png"), cv2.IMREAD_UNCHANGED)
    expect = np.round(raw[..., 2] * (raw[..., 3] / 255.0))
    assert np.abs(rgba[..., 0].astype(int) - expect).max() <= 1  # composited on black


def test_models_and_paths_that_cannot_work(tmp_path, example_images, capsys):
    code, _, err = _cli(capsys, "--engine", tmp_path / "nope.onnx", "--images", example_images)
    assert code == 2 and "does not exist" in err
    code, _, err = _cli(capsys, "--engine", feature_map(tmp_path / "f.onnx"), "--images", example_images)
    assert code == 3 and "classifier" in err and err.count("\n") == 1
    model = cnn(tmp_path / "m.onnx", hw=64)
    code, _, err = _cli(capsys, "--engine", model, "--images", tmp_path / "missing")
    assert code == 2 and "does not exist" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _cli(capsys, "--engine", model, "--images", empty, "--size", "40")
    assert code == 2 and "no usable image" in err
    model.with_suffix(".json").write_text("{not json")
    code, _, err = _cli(capsys, "--engine", model, "--images", example_images)
    assert code == 2 and "sidecar" in err
    model.with_suffix(".json").write_text('{"mean": [0, 0]}')
    code, _, err = _cli(capsys, "--engine", model, "--images", example_images)
    assert code == 2 and "three values" in err
    model.with_suffix(".json").unlink()
    code, _, err = _cli(capsys, "--engine", model, "--images", example_images, "--canvas", "32x32")
    assert code == 2 and "differs from the model's fixed input" in err
    with pytest.raises(SystemExit) as e:
        main(["--engine", str(model), "--images", str(example_images), "--shift", "1"])
    assert e.value.code == 2


def test_labels_give_accuracy_and_softmax_heads_are_detected(tmp_path, example_images, capsys):
    model = cnn(tmp_path / "soft.onnx", hw=64, softmax=True)
    labels = tmp_path / "labels.csv"
    labels.write_text("cat_chelsea.jpg,3\ncoffee_cup.jpg 4\n")
    out_json = tmp_path / "r.json"
    code, _, err = _cli(capsys, "--engine", model, "--images", example_images, "--size", "40",
                        "--protocol", "embed-black", "--labels", labels, "--json", out_json)
    assert code == 0, err
    r = json.loads(out_json.read_text())
    assert r["model"]["output_kind"] == "probabilities"
    acc = r["protocols"]["embed-black"]["accuracy"]["first_frame"]
    assert 0 <= acc["value"] <= 1 and r["protocols"]["embed-black"]["by_first_frame"]
    labels.write_text("cat_chelsea.jpg,3\ncoffee_cup.jpg,not-a-class\n")  # (a name with spaces is fine: below)
    code, _, err = _cli(capsys, "--engine", model, "--images", example_images, "--labels", labels)
    assert code == 2 and "line 2: 'not-a-class' is neither a class index" in err


def test_labels_that_may_be_oversights_are_counted_and_named(tmp_path, example_images, capsys):
    """A header is accepted; names that match no image, repeated lines, images left unlabelled and indices
    beyond the model's outputs are counted in the report and named in the table; what cannot be meant
    (one image, two labels; a file that is not text) is an error naming the line or the file."""
    model = cnn(tmp_path / "m.onnx", hw=64, classes=10)
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label\ncat_chelsea.jpg,3\ncoffee_cup.jpg,4\ncoffee_cup.jpg,4\nnot_here.jpg,1\n"
                      "rocket_falcon9_launch.jpg,12\n")
    out_json = tmp_path / "r.json"
    code, out, err = _cli(capsys, "--engine", model, "--images", example_images, "--size", "40", "--protocol",
                          "crop", "--labels", labels, "--json", out_json)
    assert code == 0, err
    summary = json.loads(out_json.read_text())["labels"]
    assert summary["given"] == 4 and summary["labelled_images"] == 3
    assert summary["unknown_names"] == {"count": 1, "first": ["not_here.jpg"]}
    assert summary["repeated_lines"] == {"count": 1, "first": ["coffee_cup.jpg"]}
    assert summary["beyond_outputs"] == {"count": 1, "first": ["rocket_falcon9_launch.jpg"]}
    assert summary["unlabelled_images"]["count"] == 3
    assert ("labels: 3 of 6 images labelled; names matching no image: 1 (not_here.jpg); repeated lines: 1 "
            "(coffee_cup.jpg); labels beyond the model's outputs: 1 (rocket_falcon9_launch.jpg)") in out
    labels.write_text("cat_chelsea.jpg,3\ncat_chelsea.jpg,5\n")
    code, _, err = _cli(capsys, "--engine", model, "--images", example_images, "--labels", labels)
    assert code == 2 and "line 2: 'cat_chelsea.jpg' is labelled again" in err
    labels.write_bytes("caf\xe9.jpg,3\n".encode("latin-1"))
    code, _, err = _cli(capsys, "--engine", model, "--images", example_images, "--labels", labels)
    assert code == 2 and f"--labels {labels}: not UTF-8 text" in err and err.count("\n") == 1


def test_a_gate_on_a_protocol_that_measured_nothing_fails(small_model, tmp_path, capsys):
    d = tmp_path / "tiny"
    d.mkdir()
    write_image(d / "tiny.png", np.full((20, 30, 3), 128, np.uint8))
    code, out, _ = _cli(capsys, "--engine", small_model, "--images", d, "--size", "40", "--protocol", "crop",
                        "--protocol", "embed-black", "--max-p-top1-change", "1")
    assert code == 1 and "no pairs measured" in out


def test_device_cuda_without_a_gpu_exits_3(capsys):
    if gpu_renderer()[0] is not None:
        pytest.skip("a GPU is present")
    code = main(["--engine", str(EXAMPLE_MODEL), "--images", str(EXAMPLE_IMAGES), "--device", "cuda",
                 "--no-progress"])
    assert code == 3 and "no usable GPU" in capsys.readouterr().err


def test_preprocessing_and_batches_that_cannot_be_meant_are_usage_errors(small_model, example_images, capsys):
    """A NaN mean or a std of 1e-300 used to give a report with NaN in it (not JSON) that passed a gate."""
    for flags in (("--mean", "nan,0.4,0.4"), ("--std", "1e-300,0.2,0.2"), ("--std", "inf,1,1"), ("--batch", "0")):
        code, _, err = _cli(capsys, "--engine", small_model, "--images", example_images, "--size", "40",
                            "--max-mac", "1", *flags)
        assert code == 2 and ("std" in err or "batch" in err), (flags, err)


def test_a_model_that_outputs_nan_cannot_pass_a_gate(tmp_path, example_images, capsys):
    code, out, err = _cli(capsys, "--engine", not_a_number(tmp_path / "nan.onnx"), "--images", example_images,
                          "--size", "20", "--max-p-top1-change", "1", "--json", tmp_path / "r.json")
    assert code == 3 and "NaN or infinite" in err and not (tmp_path / "r.json").exists()


def test_an_error_names_the_option_as_its_flag_and_never_touches_a_path(small_model, example_images, tmp_path,
                                                                        capsys):
    """An option an error names reads as the flag typed on the command line, as the field's name through the
    API (and after pickling, as a Ray actor's error travels); a path that holds the same word is left alone."""
    from shiftaudit.client import InputError, LayerOptions, OptionError, audit

    labels = tmp_path / "labels" / "labels.csv"  # the option's name, twice, in the path
    code, _, err = _cli(capsys, "--engine", small_model, "--images", example_images, "--labels", labels)
    assert code == 2 and err == f"audit-client: error: --labels {labels}: No such file or directory\n"
    baseline = tmp_path / "baseline.json"
    code, _, err = _cli(capsys, "--engine", small_model, "--images", example_images, "--baseline", baseline)
    assert code == 2 and f"--baseline {baseline}: No such file" in err
    with pytest.raises(InputError) as e:
        audit(small_model, example_images, labels=labels)
    assert str(e.value) == f"labels {labels}: No such file or directory"
    with pytest.raises(OptionError) as e:
        LayerOptions(rise=-1)
    again = pickle.loads(pickle.dumps(e.value))
    assert str(again) == "rise must be above 0, not -1" and again.marked == e.value.marked != str(again)
    code, _, err = _cli(capsys, "layers", "--engine", small_model, "--images", example_images, "--rise", "-1")
    assert code == 2 and err == "audit-client: error: --rise must be above 0, not -1\n"


def test_a_first_line_that_names_an_image_is_a_label_not_a_header(tmp_path, example_images, capsys):
    """A typo in the first label ('Egyptian kat') used to be taken for a header and the label dropped
    ("1 of 6 images labelled", exit 0); a header is a first line whose first field names no image."""
    labels = tmp_path / "labels.csv"
    labels.write_text("cat_chelsea.jpg,Egyptian kat\ncoffee_cup.jpg,coffee mug\n")
    code, _, err = _cli(capsys, "--engine", EXAMPLE_MODEL, "--images", example_images, "--protocol", "null",
                        "--labels", labels)
    assert code == 2 and err.count("\n") == 1
    assert "line 1: 'Egyptian kat' is neither a class index nor a class name (this line names the image" in err
    labels.write_text("file,class\ncat_chelsea.jpg,Egyptian cat\ncoffee_cup.jpg,coffee mug\n")  # a real header
    code, out, err = _cli(capsys, "--engine", EXAMPLE_MODEL, "--images", example_images, "--protocol", "null",
                          "--labels", labels)
    assert code == 0 and "labels: 2 of 6 images labelled" in out, err


def test_a_shift_that_is_not_small_is_refused_unless_asked_for(small_model, example_images, tmp_path, capsys):
    """--shift 99,99 used to run as if it were a one-pixel audit (crop resampled to 323x323, frames 99 pixels
    apart)."""
    code, _, err = _cli(capsys, "--engine", EXAMPLE_MODEL, "--images", example_images, "--shift", "99,99")
    assert code == 2 and err.count("\n") == 1
    assert ("--shift 99,99 is not a small shift: its frames would lie 99 pixels apart (crop would resample to "
            "(H+99)x(W+99)") in err and "give --large-shift to audit it anyway" in err
    code, _, err = _cli(capsys, "--engine", small_model, "--images", example_images, "--size", "40", "--sweep-step",
                        "9", "--sweep-pixels", "18", "--protocol", "translate-sweep")
    assert code == 2 and "--sweep-step 9 moves the sequence 9 pixels a frame" in err
    out_json = tmp_path / "r.json"
    code, _, err = _cli(capsys, "--engine", small_model, "--images", example_images, "--size", "40", "--shift",
                        "12,0", "--large-shift", "--protocol", "embed-black", "--json", out_json)
    assert code == 0, err
    report = json.loads(out_json.read_text())
    assert report["config"]["large_shift"] is True and report["config"]["shift"] == [12, 0]
    assert {tuple(u["placements"][1][:2]) for r in report["images"] for u in r["units"]} and all(
        u["placements"][1][0] - u["placements"][0][0] == 12 for r in report["images"] for u in r["units"])


def test_the_top_level_help_lists_every_subcommand(capsys):
    from shiftaudit.client.cli import COMMANDS

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"\n  {name} " in out, name
    assert "130 interrupted" in out
    for name, (command, _) in COMMANDS.items():  # and each runs its own
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert command.prog in capsys.readouterr().out
