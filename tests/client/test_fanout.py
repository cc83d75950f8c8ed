"""`audit-client --server A --server B ...`: image shards on several real servers on loopback, merged
into the report one server gives for the same seed."""
from __future__ import annotations

import json
import shutil

import pytest

from shiftaudit.client.cli import main
from shiftaudit.client.fanout import shards
from shiftaudit.server.engine.files import image_files
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, assert_valid_report
from tests.support.models import cnn
from tests.support.server_process import ServerProcess

# what must not depend on how the images were split (timings, devices and shard lists may)
SAME = ("schema", "model", "config", "frames", "protocols", "tallies", "skipped", "images")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Three servers holding the same model, a fourth holding another under the same name, a fifth
    with the same model that takes no upload over 1 kB."""
    models, other = tmp_path_factory.mktemp("models"), tmp_path_factory.mktemp("other")
    shutil.copy(EXAMPLE_MODEL, models / "lite0.onnx")
    shutil.copy(EXAMPLE_MODEL.with_suffix(".json"), models / "lite0.json")
    shutil.copy(EXAMPLE_MODEL.parent / "imagenet_classes.txt", models)
    cnn(other / "lite0.onnx", hw=224)
    servers = [ServerProcess(root, tmp_path_factory.mktemp("state")).start() for root in (models,) * 3 + (other,)]
    servers.append(ServerProcess(models, tmp_path_factory.mktemp("state"), "--max-upload-bytes", "1000").start())
    yield servers
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The example photographs, one of them twice (same bytes, same shard), and one file that is no image."""
    d = tmp_path_factory.mktemp("images")
    shutil.copytree(EXAMPLE_IMAGES, d / "photos")
    shutil.copy(EXAMPLE_IMAGES / "coffee_cup.jpg", d / "copy_of_coffee.jpg")
    (d / "notes.txt").write_text("not an image")
    return d


def _run(tmp_path, images, targets, *extra: str) -> tuple[int, dict]:
    out = tmp_path / f"report-{len(targets)}.json"
    code = main(["--engine", "lite0.onnx", "--images", str(images), "--no-progress", "--json", str(out),
                 "--protocol", "crop", "--protocol", "embed-black", "--protocol", "translate-sweep",
                 "--pairs-per-image", "2", "--sweep-pixels", "3", "--seed", "7", *extra,
                 *(a for t in targets for a in ("--server", t))])
    return code, json.loads(out.read_text()) if code == 0 else {}


def test_shards_depend_on_content_only(images):
    files = image_files(images)
    split = shards(files, 3)
    assert sorted(f for s in split for f in s) == files
    assert shards(list(reversed(files)), 3) == [list(reversed(s)) for s in split]
    where = {name: k for k, s in enumerate(split) for name, _ in s}
    assert where["copy_of_coffee.jpg"] == where["photos/coffee_cup.jpg"]


def test_sharded_audit_equals_the_single_server_audit(tmp_path, fleet, images):
    labels = tmp_path / "labels.csv"  # a header, a class name, a repeated line, a name matching no image
    labels.write_text("image,label\nphotos/cat_chelsea.jpg,tabby\ncoffee_cup.jpg,504\ncoffee_cup.jpg,504\n"
                      "missing.jpg,1\n")
    code, single = _run(tmp_path, images, [fleet[0].target], "--labels", str(labels))
    assert code == 0
    code, merged = _run(tmp_path, images, [s.target for s in fleet[:3]], "--labels", str(labels))
    assert code == 0
    assert {k: merged[k] for k in (*SAME, "labels")} == {k: single[k] for k in (*SAME, "labels")}
    assert_valid_report(merged)
    assert single["labels"]["unknown_names"] == {"count": 1, "first": ["missing.jpg"]}
    assert single["labels"]["labelled_images"] == 2 and single["labels"]["repeated_lines"]["count"] == 1
    assert sum(s["images"] for s in merged["shards"]) == len(single["images"]) == 7
    assert len(merged["shards"]) >= 2  # the seven images really were spread over several servers
    assert [s["image"] for s in merged["skipped"]] == ["notes.txt"]


def test_servers_holding_different_models_are_refused(tmp_path, fleet, images, capsys):
    code, _ = _run(tmp_path, images, [fleet[0].target, fleet[3].target])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "different models" in err and len(err.splitlines()) == 1


def test_a_failing_shard_fails_the_audit_naming_its_server(tmp_path, fleet, images, capsys):
    code, _ = _run(tmp_path, images, [fleet[0].target, fleet[4].target])
    assert code in (2, 3)
    err = capsys.readouterr().err.strip()
    assert f"{fleet[4].target}: upload larger" in err and len(err.splitlines()) == 1, err


def test_fan_out_needs_local_images(capsys, fleet):
    code = main(["--engine", "lite0.onnx", "--data-path", "photos", "--no-progress",
                 "--server", fleet[0].target, "--server", fleet[1].target])
    assert code == 2 and "shards the images" in capsys.readouterr().err
