"""The report follows its JSON Schema (``report.schema.json``, in the package; docs/report.md): every
protocol, labels, skips; and the schema is strict enough to refuse what is not a v1 report."""
from __future__ import annotations

import copy

import jsonschema
import pytest

from shiftaudit.client import audit
from shiftaudit.server.engine.protocols import PROTOCOLS
from shiftaudit.server.engine.report import json_schema
from tests.support import EXAMPLE_IMAGES, assert_valid_report
from tests.support.models import cnn


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("schema")
    model = cnn(d / "m.onnx", hw=64, classes=5)
    labels = d / "labels.csv"
    labels.write_text("image,label\ncat_chelsea.jpg,3\nnot_there.jpg,1\n")
    (d / "images").mkdir()
    for name in ("cat_chelsea.jpg", "coffee_cup.jpg"):
        (d / "images" / name).write_bytes((EXAMPLE_IMAGES / name).read_bytes())
    (d / "images" / "notes.txt").write_text("not an image")
    return audit(model, d / "images", {"protocols": PROTOCOLS, "size": 24, "sweep_pixels": 2, "size_sweep": (20, 28, 4)},
                 labels=labels)


def test_a_report_of_every_protocol_with_labels_and_skips_follows_the_schema(report):
    assert set(report["protocols"]) == set(PROTOCOLS) and report["skipped"] and "labels" in report
    assert_valid_report(report)


@pytest.mark.parametrize("change", [
    lambda r: r.pop("tallies"),
    lambda r: r.update(schema="shiftaudit.report/v1"),
    lambda r: r["protocols"]["crop"]["p_top1_change"].update(ci95=[0.1, 1.2]),
    lambda r: r["tallies"]["crop"].update(overall=[1, 2, 3, 4]),  # a v1 tally: no image-clustered sums
    lambda r: r["images"][0].update(size=[10]),
    lambda r: r["model"]["preprocessing"]["origins"].update(mean="guessed"),
    lambda r: r.update(extra=1),
])
def test_what_is_not_a_v2_report_is_refused(report, change):
    broken = copy.deepcopy(report)
    change(broken)
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(broken))
