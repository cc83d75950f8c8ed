"""`audit-client --server A --server B ...`: image shards on several real servers on loopback, merged
into the report one server gives for the same seed."""
from __future__ import annotations

import json
import shutil
import threading

import pytest

from shiftaudit.client.cli import main
from shiftaudit.client.fanout import shards
from shiftaudit.server.engine.files import image_files
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, assert_valid_report
from tests.support.models import cnn
from tests.support.server_process import ServerProcess, wait_for

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


def test_a_server_that_refuses_its_shard_hands_it_to_another(tmp_path, fleet, images):
    code, single = _run(tmp_path, images, [fleet[0].target])
    code, merged = _run(tmp_path, images, [fleet[4].target, fleet[0].target])
    assert code == 0
    assert {k: merged[k] for k in SAME} == {k: single[k] for k in SAME}
    moved = [s for s in merged["shards"] if "failed_on" in s]
    assert moved and all(s["server"] == fleet[0].target and s["failed_on"] == [fleet[4].target] for s in moved)
    assert_valid_report(merged)


def test_the_audit_fails_naming_every_server_when_none_can_take_a_shard(tmp_path, fleet, images, capsys):
    code, _ = _run(tmp_path, images, [fleet[4].target, "127.0.0.1:1"])
    assert code == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "no server could take" in err and f"{fleet[4].target}: RESOURCE_EXHAUSTED: upload larger" in err
    assert "127.0.0.1:1: UNAVAILABLE" in err


def test_a_server_killed_mid_audit_loses_nothing(tmp_path_factory, images, tmp_path):
    """Three servers; one is killed (SIGKILL) while it audits its shard: the others take the shard, and
    the report is the one a single server gives."""
    models = tmp_path_factory.mktemp("trio-models")
    shutil.copy(EXAMPLE_MODEL, models / "lite0.onnx")
    shutil.copy(EXAMPLE_MODEL.with_suffix(".json"), models / "lite0.json")
    shutil.copy(EXAMPLE_MODEL.parent / "imagenet_classes.txt", models)
    trio = [ServerProcess(models, tmp_path_factory.mktemp("state")).start() for _ in range(3)]
    heavy = ("--pairs-per-image", "6")  # a few seconds a shard, so that the kill lands mid-shard
    try:
        code, single = _run(tmp_path, images, [trio[0].target], *heavy)
        assert code == 0
        result: dict = {}
        run = threading.Thread(target=lambda: result.update(zip(("code", "report"), _run(
            tmp_path, images, [s.target for s in trio], *heavy))))
        run.start()

        def auditing() -> ServerProcess | None:
            return next((s for s in trio[1:] if {"started"} <= {e.get("event") for e in s.log()}
                         and "finished" not in {e.get("event") for e in s.log()}), None)

        victim = wait_for(auditing, timeout=60, every=0.01)
        victim.proc.kill()
        run.join(180)
        assert result["code"] == 0
        merged = result["report"]
        assert {k: merged[k] for k in SAME} == {k: single[k] for k in SAME}
        assert any(s.get("failed_on") == [victim.target] for s in merged["shards"]), merged["shards"]
        assert victim.target not in [s["server"] for s in merged["shards"]]
    finally:
        for s in trio:
            s.stop()


def test_fan_out_needs_local_images(capsys, fleet):
    code = main(["--engine", "lite0.onnx", "--data-path", "photos", "--no-progress",
                 "--server", fleet[0].target, "--server", fleet[1].target])
    assert code == 2 and "shards the images" in capsys.readouterr().err
