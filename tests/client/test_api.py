"""The Python API (`shiftaudit.client.audit`): public error types, options checked by name, a report
that says where each preprocessing value came from, and a report never taken for a sidecar."""
from __future__ import annotations

import json

import pytest

from shiftaudit.client import AuditError, AuditOptions, InputError, ModelError, OptionError, audit
from tests.support import EXAMPLE_IMAGES
from tests.support.models import cnn, feature_map

QUICK = {"size": 40, "protocols": "crop"}  # a plain mapping, and a lone protocol as a string


def test_a_misspelt_option_names_the_valid_ones():
    with pytest.raises(OptionError, match=r"unknown option 'pair_per_image' \(did you mean 'pairs_per_image'\?\); "
                                          r"valid: protocols, seed"):
        AuditOptions(pair_per_image=3)
    assert AuditOptions(protocols="crop").protocols == ("crop",)  # not the protocols c, r, o, p
    with pytest.raises(OptionError, match="unknown protocol c, r"):
        AuditOptions(protocols=list("cr"))
    with pytest.raises(OptionError, match="batch must lie in 1..4096"):
        AuditOptions(batch=0)


def test_errors_are_public_audit_errors(tmp_path):
    model = cnn(tmp_path / "m.onnx", hw=64)
    with pytest.raises(OptionError, match=r"unknown preprocessing value 'meen' \(did you mean 'mean'\?\)"):
        audit(model, EXAMPLE_IMAGES, QUICK, preprocessing={"meen": (0, 0, 0)})
    with pytest.raises(OptionError, match="unknown option 'sise'"):
        audit(model, EXAMPLE_IMAGES, {"sise": 40})
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        audit(model, tmp_path / "empty", QUICK)
    with pytest.raises(ModelError):
        audit(feature_map(tmp_path / "fmap.onnx"), EXAMPLE_IMAGES, QUICK)
    for kind in (InputError, OptionError, ModelError):
        assert issubclass(kind, AuditError)
    assert issubclass(OptionError, ValueError)  # code that caught ValueError still does


def test_the_report_says_where_each_preprocessing_value_came_from(tmp_path):
    model = cnn(tmp_path / "m.onnx", hw=64)
    report = audit(model, EXAMPLE_IMAGES, QUICK)
    assert set(report["model"]["preprocessing"]["origins"].values()) == {"default"}
    (tmp_path / "m.json").write_text('{"mean": [0, 0, 0], "std": [1, 1, 1]}')
    pre = audit(model, EXAMPLE_IMAGES, QUICK, preprocessing={"pixel_range": 255})["model"]["preprocessing"]
    assert pre["origins"] == {"mean": "sidecar", "std": "sidecar", "pixel_range": "options",
                              "channel_order": "default", "output": "default"}
    assert pre["source"] == str(tmp_path / "m.json")


def test_a_report_in_the_sidecars_place_is_named_as_such(tmp_path):
    model = cnn(tmp_path / "m.onnx", hw=64)
    report = audit(model, EXAMPLE_IMAGES, QUICK)
    (tmp_path / "m.json").write_text(json.dumps(report))
    with pytest.raises(OptionError, match=r"m.json is an audit report, not the preprocessing sidecar of m.onnx"):
        audit(model, EXAMPLE_IMAGES, QUICK)


def test_label_lines_with_commas_keep_spaces_in_names():
    from shiftaudit.server.engine.labels import parse_labels, unknown_names

    labels = parse_labels("my photo.jpg,3\nother.png 4\nthird.png\t5\n", None)
    assert labels.by_image == {"my photo.jpg": 3, "other.png": 4, "third.png": 5}
    assert unknown_names("a.jpg,1\nzz.jpg,2\nzz.jpg,2\n", ["a.jpg"]) == ["zz.jpg"]  # once each
