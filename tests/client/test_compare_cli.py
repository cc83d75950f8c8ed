"""audit-client compare, diff and --baseline: two engines on identical frames, in process and through a
server, the comparison's views and its non-inferiority gates."""
from __future__ import annotations

import json

from shiftaudit.client.cli import main
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, assert_valid_report
from tests.support.models import cnn, perturbed_head, with_background_class

QUICK = ["--images", str(EXAMPLE_IMAGES), "--protocol", "crop", "--protocol", "embed-black", "--size", "40",
         "--pairs-per-image", "3", "--no-progress"]


def test_compare_equals_diff_of_the_two_reports(tmp_path, capsys):
    a = cnn(tmp_path / "a.onnx", hw=64, stride=2)
    b = perturbed_head(a, tmp_path / "b.onnx")
    out = tmp_path / "c.json"
    code = main(["compare", "--engine", str(a), "--engine", str(b), *QUICK, "--json", str(out),
                 "--markdown", str(tmp_path / "c.md"), "--junit", str(tmp_path / "c.xml"),
                 "--max-increase-p-top1-change", "1"])
    assert code == 0, capsys.readouterr().err
    compared = json.loads(out.read_text())
    assert_valid_report(compared, "compare")
    for engine, name in ((a, "a"), (b, "b")):
        assert main(["--engine", str(engine), *QUICK, "--json", str(tmp_path / f"report-{name}.json")]) == 0
    diffed = tmp_path / "d.json"
    assert main(["diff", str(tmp_path / "report-a.json"), str(tmp_path / "report-b.json"), "--json", str(diffed)]) == 0
    assert json.loads(diffed.read_text()) == compared
    table = capsys.readouterr().out
    assert "increase B-A [95% CI]" in table and "McNemar p" in table and "agreement" in table
    assert "| `crop` |" not in (tmp_path / "c.md").read_text() and "| crop |" in (tmp_path / "c.md").read_text()
    assert 'failures="0"' in (tmp_path / "c.xml").read_text()


def test_a_baseline_gate_fails_a_measurably_jaggier_model(tmp_path, zero_mean_sidecar, capsys):
    smooth = zero_mean_sidecar(cnn(tmp_path / "s1.onnx", hw=64, stride=1, classes=1000))
    strided = zero_mean_sidecar(cnn(tmp_path / "s2.onnx", hw=64, stride=2, classes=1000))
    options = ["--images", str(EXAMPLE_IMAGES), "--protocol", "embed-black", "--size", "24", "--pairs-per-image",
               "20", "--no-progress"]
    baseline = tmp_path / "baseline.json"
    assert main(["--engine", str(smooth), *options, "--json", str(baseline)]) == 0
    # itself: no discordant pair, yet six images cannot show that none would be discordant on others: the
    # increase lies within ±(1 - 0.025^(1/6)) = ±0.459, at the limit 0 undecided, below 0.5 shown
    assert main(["--engine", str(smooth), *options, "--baseline", str(baseline),
                 "--max-increase-p-top1-change", "0"]) == 4
    assert "95% [-0.4593, 0.4593] straddles 0: too few images to tell (the estimate is at the limit)" in \
        capsys.readouterr().out
    assert main(["--engine", str(smooth), *options, "--baseline", str(baseline),
                 "--max-increase-p-top1-change", "0.5"]) == 0
    junit = tmp_path / "j.xml"
    code = main(["--engine", str(strided), *options, "--baseline", str(baseline), "--max-increase-p-top1-change",
                 "0.02", "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 1 and "against the baseline:" in out and "FAIL: p_top1_change_increase lower 95%" in out
    assert "measurably above" in out
    assert 'name="embed-black: increase of P(top-1 change) 95% interval &lt;= 0.02"' in junit.read_text()
    assert main(["--engine", str(strided), *options, "--baseline", str(tmp_path / "nope.json")]) == 2
    out, err = capsys.readouterr()
    assert f"--baseline {tmp_path / 'nope.json'}: No such file" in err and out == ""  # before any audit


def test_engines_that_cannot_see_the_same_frames_are_refused(server, capsys):
    common = ["--data-path", "photos", "--server", server.target, "--size", "40", "--protocol", "crop",
              "--no-progress"]
    assert main(["compare", "--engine", "lite0.onnx", "--engine", "lite0.onnx", *common]) == 0
    assert "1.000" in capsys.readouterr().out  # a model against itself through the server: full agreement
    assert main(["compare", "--engine", "lite0.onnx", "--engine", "sub/small.onnx", *common]) == 2
    assert "inputs of different sizes (224x224 and 64x64): they cannot see identical frames" in capsys.readouterr().err
    assert main(["compare", "--engine", "lite0.onnx", *common]) == 2
    assert "needs --engine twice" in capsys.readouterr().err


def test_the_example_model_against_its_int8_copy(tmp_path, capsys):
    """The README's comparison, on fewer pairs: the INT8 copy agrees on most frames, not all."""
    int8 = EXAMPLE_MODEL.with_name("efficientnet_lite0_int8.onnx")
    out = tmp_path / "c.json"
    code = main(["compare", "--engine", str(EXAMPLE_MODEL), "--engine", str(int8), "--images", str(EXAMPLE_IMAGES),
                 "--protocol", "crop", "--protocol", "scale", "--pairs-per-image", "2", "--no-progress",
                 "--json", str(out)])
    assert code == 0
    compared = json.loads(out.read_text())
    assert_valid_report(compared, "compare")
    agreement = [p["agreement"]["frames"]["value"] for p in compared["protocols"].values()]
    assert all(0.5 < a <= 1 for a in agreement) and min(agreement) < 1
    assert compared["b"]["model"]["sha256"] != compared["a"]["model"]["sha256"]
    options = ["--images", str(EXAMPLE_IMAGES), "--protocol", "crop", "--protocol", "scale", "--pairs-per-image", "2",
               "--no-progress"]
    fp32, q8 = tmp_path / "fp32.json", tmp_path / "int8.json"
    assert main(["--engine", str(EXAMPLE_MODEL), *options, "--json", str(fp32)]) == 0
    assert main(["--engine", str(int8), *options, "--json", str(q8)]) == 0
    diffed = tmp_path / "diff.json"
    assert main(["diff", str(fp32), str(q8), "--json", str(diffed)]) == 0
    assert json.loads(diffed.read_text())["protocols"] == compared["protocols"]  # diff of two audits = compare
    worst = max(p["p_top1_change_increase"]["ci95"][1] for p in compared["protocols"].values())
    gate = ["--engine", str(int8), *options, "--baseline", str(fp32), "--max-increase-p-top1-change"]
    assert main([*gate, f"{worst + 0.01}"]) == 0
    # just below the upper end: the interval straddles the limit (the increase is not measurably above it)
    assert main([*gate, f"{worst - 0.01}"]) == 4 and "inconclusive" in capsys.readouterr().out
    assert main([*gate, f"{worst - 0.01}", "--inconclusive", "fail"]) == 1
    assert main([*gate, f"{worst - 0.01}", "--inconclusive", "pass"]) == 0
    assert main([*gate, f"{worst - 0.01}", "--gate-on", "upper"]) == 1


def test_engines_with_other_classes_compare_through_a_class_map(tmp_path, capsys):
    a = cnn(tmp_path / "a.onnx", hw=64, stride=2)
    b = with_background_class(a, tmp_path / "b.onnx")
    args = ["compare", "--engine", str(a), "--engine", str(b), *QUICK, "--json", str(tmp_path / "c.json")]
    assert main(args) == 2
    assert "output 10 and 11 classes: give a class map" in capsys.readouterr().err
    class_map = tmp_path / "map.csv"
    class_map.write_text("".join(f"{i},{i + 1}\n" for i in range(10)))
    assert main([*args, "--class-map", str(class_map)]) == 0
    compared = json.loads((tmp_path / "c.json").read_text())
    for p in compared["protocols"].values():  # the same decisions under other numbers
        assert p["agreement"]["frames"]["value"] == 1.0 and p["flips"]["a_only"] == p["flips"]["b_only"] == 0
    class_map.write_text("0;1\n")
    assert main([*args, "--class-map", str(class_map)]) == 2
    assert "line 1: expected 'A_index,B_index'" in capsys.readouterr().err


def test_a_baseline_that_does_not_match_costs_no_outputs_and_compare_keeps_inputs(tmp_path, capsys):
    a = cnn(tmp_path / "a.onnx", hw=64, stride=2)
    b = perturbed_head(a, tmp_path / "b.onnx")
    baseline = tmp_path / "baseline.json"
    assert main(["--engine", str(a), *QUICK, "--json", str(baseline)]) == 0
    out = tmp_path / "new.json"
    code = main(["--engine", str(b), *QUICK, "--pairs-per-image", "2", "--baseline", str(baseline),
                 "--max-increase-mac", "1", "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--baseline: the reports were made with different options (pairs_per_image" in err
    assert json.loads(out.read_text())["config"]["pairs_per_image"] == 2  # the audit is kept all the same
    sidecar = b.with_suffix(".json")
    sidecar.write_text('{"mean": [0, 0, 0]}')
    code = main(["compare", "--engine", str(a), "--engine", str(b), *QUICK, "--json", str(sidecar)])
    assert code == 2 and "is the model's preprocessing sidecar" in capsys.readouterr().err
    assert sidecar.read_text() == '{"mean": [0, 0, 0]}'


def test_a_report_made_before_clustering_is_still_read(tmp_path, capsys):
    """A shiftaudit.report/v1 report (four numbers a tally, no images counted) is rendered again with its
    gates, and is a baseline: what a pipeline stored before v2 keeps working."""
    model = cnn(tmp_path / "m.onnx", hw=64, stride=2)
    new = tmp_path / "new.json"
    assert main(["--engine", str(model), *QUICK, "--json", str(new)]) == 0
    old_doc = json.loads(new.read_text())
    old_doc["schema"] = "shiftaudit.report/v1"
    for tallies in old_doc["tallies"].values():
        tallies["overall"] = tallies["overall"][:4]
        tallies["strata"] = {k: v[:4] for k, v in tallies["strata"].items()}
    old = tmp_path / "old.json"
    old.write_text(json.dumps(old_doc))
    capsys.readouterr()
    assert main(["report", str(old), "--max-p-top1-change", "1"]) == 0
    assert "verdict: all 2 gates passed" in capsys.readouterr().out
    compared = tmp_path / "c.json"
    assert main(["diff", str(old), str(new), "--json", str(compared), "--max-increase-p-top1-change", "1"]) == 0
    assert all(p["flips"]["a_only"] == p["flips"]["b_only"] == 0
               for p in json.loads(compared.read_text())["protocols"].values())
    old_doc["schema"] = "shiftaudit.report/v0"
    old.write_text(json.dumps(old_doc))
    assert main(["report", str(old)]) == 2
    assert f"{old}: not a shiftaudit.report/v2 report" in capsys.readouterr().err
