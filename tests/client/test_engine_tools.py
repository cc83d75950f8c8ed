"""audit-client with TensorRT engines where TensorRT is missing (every machine here): the exit code and
the message that says what to install; build-engine and inspect."""
from __future__ import annotations

import importlib.util

import pytest

from shiftaudit.client.cli import main
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL
from tests.support.engines import fake_engine

no_tensorrt = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")


@no_tensorrt
def test_an_engine_without_tensorrt_exits_3_saying_what_to_install(tmp_path, capsys):
    code = main(["--engine", str(fake_engine(tmp_path)), "--images", str(EXAMPLE_IMAGES), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3 and "TensorRT is not installed" in err and "pip install tensorrt" in err
    assert main(["build-engine", str(EXAMPLE_MODEL), "-o", str(tmp_path / "b.plan")]) == 3
    assert "pip install tensorrt" in capsys.readouterr().err


def test_a_changed_engine_is_refused_before_tensorrt_is_even_needed(tmp_path, capsys):
    plan = fake_engine(tmp_path)
    plan.write_bytes(b"another engine")
    code = main(["--engine", str(plan), "--images", str(EXAMPLE_IMAGES), "--no-progress"])
    assert code == 3 and "changed since its manifest was written" in capsys.readouterr().err
    assert main(["inspect", str(plan)]) == 3


def test_inspect_shows_the_manifest_then_what_this_node_lacks(tmp_path, capsys):
    code = main(["inspect", str(fake_engine(tmp_path))])
    out, err = capsys.readouterr()
    assert '"tensorrt": "10.13.0.35"' in out
    if importlib.util.find_spec("tensorrt") is None:
        assert code == 3 and "TensorRT is not installed" in err
    missing = tmp_path / "none"
    missing.mkdir()
    (missing / "x.plan").write_bytes(b"x")
    assert main(["inspect", str(missing / "x.plan")]) == 3 and "no manifest" in capsys.readouterr().err
