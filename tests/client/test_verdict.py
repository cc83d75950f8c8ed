"""The verdict, computed by hand: three outcomes of a gate on an interval (pass, fail, inconclusive with the
images that would decide), for absolute and baseline gates; a point gate; what --inconclusive and
--judge-anyway change; and a model whose outputs do not depend on the image, which no gate passes."""
from __future__ import annotations

import json

import pytest

from shiftaudit.client.cli import main
from shiftaudit.client.gates import Check, Gates
from shiftaudit.client.verdict import FAIL, INCONCLUSIVE, PASS, images_to_decide, judge, verdict
from shiftaudit.server.engine.report import cannot_judge
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL

ESTIMATE = {"value": 0.10, "ci95": [0.05, 0.15]}


@pytest.mark.parametrize("limit,outcome,reason", [
    (0.20, PASS, "p_top1_change upper 95% 0.1500 <= 0.2"),
    (0.15, PASS, "p_top1_change upper 95% 0.1500 <= 0.15"),  # at the limit: not above it
    (0.03, FAIL, "p_top1_change lower 95% 0.0500 > 0.03: measurably above"),
    # straddles: the upper half-width 0.05 must shrink to the gap 0.02: (0.05 / 0.02)^2 = 6.25 times the 10 images
    (0.12, INCONCLUSIVE, "p_top1_change 95% [0.0500, 0.1500] straddles 0.12: too few images to tell (about 63 would "
                         "decide at the rate observed)"),
    # below the estimate: the lower half-width 0.05 against the gap 0.04: (0.05 / 0.04)^2 * 10 = 15.6
    (0.06, INCONCLUSIVE, "p_top1_change 95% [0.0500, 0.1500] straddles 0.06: too few images to tell (about 16 would "
                         "decide at the rate observed)"),
    (0.10, INCONCLUSIVE, "straddles 0.1: too few images to tell (the estimate is at the limit)"),
])
def test_a_gate_on_the_interval_has_three_outcomes(limit, outcome, reason):
    judged = judge(Check("crop", "p_top1_change", limit, "interval", ESTIMATE), Gates(), 10, None)
    assert judged.outcome is outcome and judged.reason.endswith(reason)


def test_an_improved_model_against_its_baseline_is_never_called_jaggier():
    """The README's case: on six images the INT8 copy's crop increase is -0.167, upper end 0.262 over a
    limit of 0.02: not shown non-inferior, and not shown worse either."""
    increase = {"value": -0.167, "ci95": [-0.595, 0.262]}
    judged = judge(Check("crop", "p_top1_change_increase", 0.02, "interval", increase), Gates(), 6, None)
    assert judged.outcome is INCONCLUSIVE and "straddles 0.02" in judged.reason
    # the upper half-width 0.429 against the gap 0.187 to the limit: 6 * (0.429 / 0.187)^2 = 31.6 images
    assert images_to_decide(increase, 0.02, 6) == 32
    worse = {"value": 0.30, "ci95": [0.10, 0.50]}
    assert judge(Check("crop", "p_top1_change_increase", 0.02, "interval", worse), Gates(), 6, None).outcome is FAIL
    better = {"value": -0.30, "ci95": [-0.50, -0.10]}
    assert judge(Check("crop", "p_top1_change_increase", 0.02, "interval", better), Gates(), 6, None).outcome is PASS


def test_with_nothing_seen_the_images_that_decide_are_those_of_none_in_k():
    """No change in 6 images: the interval is [0, 1 - 0.025^(1/6)] = [0, 0.459], and it falls within 0.02
    once 1 - 0.025^(1/k) <= 0.02, k >= ln 0.025 / ln 0.98 = 182.6: 183 images, not the 3164 a square-root
    shrinking would say. The same for an increase with no discordant pair."""
    none = {"value": 0.0, "ci95": [0.0, 1 - 0.025 ** (1 / 6)]}
    judged = judge(Check("null", "p_top1_change", 0.02, "interval", none, nothing_seen=True), Gates(), 6, None)
    assert judged.outcome is INCONCLUSIVE and judged.reason.endswith("(about 183 would decide at the rate observed)")
    assert images_to_decide(none, 0.02, 6) == 3164  # 6 (0.4593 / 0.02)², what the square root would say with something seen
    increase = {"value": 0.0, "ci95": [-0.459, 0.459]}
    assert images_to_decide(increase, 0.02, 6, nothing_seen=True) == 183
    assert images_to_decide(none, 0.5, 6, nothing_seen=True) == 7  # decided by the next image at the latest


def test_a_point_gate_an_upper_gate_and_what_inconclusive_is_made_to_count_as():
    check = Check("crop", "mac", 0.12, "value", ESTIMATE)
    assert judge(check, Gates(), 10, None).outcome is PASS  # the point estimate 0.10 only
    upper = Check("crop", "mac", 0.12, "upper", ESTIMATE)
    assert judge(upper, Gates(), 10, None).outcome is FAIL  # not shown below: fails
    straddling = Check("crop", "mac", 0.12, "interval", ESTIMATE)
    assert judge(straddling, Gates(inconclusive="pass"), 10, None).outcome is PASS
    assert judge(straddling, Gates(inconclusive="fail"), 10, None).outcome is FAIL
    nothing = Check("crop", "mac", 0.12, "interval", {"value": None, "ci95": [0.0, 1.0]})
    assert judge(nothing, Gates(), 0, None).outcome is FAIL


def test_the_run_s_verdict_is_its_worst_gate():
    def judged(*limits):
        return [judge(Check("crop", "mac", limit, "interval", ESTIMATE), Gates(), 10, None) for limit in limits]
    assert verdict(judged(0.2, 0.3)).outcome is PASS and verdict(judged(0.2, 0.3)).text == "all 2 gates passed"
    assert verdict(judged(0.2, 0.12)).text == "1 of 2 gates inconclusive: too few images to tell"
    assert verdict(judged(0.03, 0.12)).text == "1 of 2 gates failed, 1 inconclusive"
    assert verdict(judged(0.03, 0.12)).outcome.exit == 1 and verdict(judged(0.12)).outcome.exit == 4
    assert verdict([]) is None


def test_a_model_whose_outputs_do_not_depend_on_the_image_passes_no_gate(tmp_path, capsys):
    """A std of 1e300 (or a mean of -1e30 with a std of 1e-4) makes every input the same: the audit says it
    cannot judge the model as configured, names the evidence, and its gates fail unless --judge-anyway."""
    base = ["--engine", str(EXAMPLE_MODEL), "--images", str(EXAMPLE_IMAGES), "--protocol", "crop", "--protocol",
            "embed-black", "--no-progress", "--max-mac", "0.5"]
    for bad in (["--std", "1e300,1e300,1e300"], ["--mean=-1e30,-1e30,-1e30", "--std", "1e-4,1e-4,1e-4"]):
        out = tmp_path / "r.json"
        assert main([*base, *bad, "--json", str(out)]) == 1
        table = capsys.readouterr().out
        assert table.startswith("warning: cannot judge this model as configured: every frame of all 6 images gives "
                                "class ") and "its outputs do not depend on the image" in table
        assert "the model cannot be judged as configured" in table
        report = json.loads(out.read_text())
        assert cannot_judge(report).startswith("every frame of all 6 images gives class")  # from the report alone
        assert main([*base, *bad, "--judge-anyway"]) == 0  # the user says so: MAC 0 [0, 0] passes 0.5
        capsys.readouterr()
    assert main([*base]) in (0, 1, 4) and "cannot judge" not in capsys.readouterr().out  # as configured: judged
