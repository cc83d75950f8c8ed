"""Audits on a real local Ray cluster (``ray.init(num_cpus=2)``): the report equals the in-process audit's
bit for bit for every protocol; an actor killed mid-audit changes nothing; a retried task's rows are
taken once (by unit key); and the command line's --ray."""
from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from shiftaudit.client.api import audit, audit_on_ray
from shiftaudit.client.cli import main
from shiftaudit.server.engine.images import image_sources
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.result import AuditResult, Merge
from shiftaudit.server.engine.runners import EngineOptions
from shiftaudit.server.engine.scale_out import AuditWorker, RayOptions
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, assert_valid_report, write_image

CPU = EngineOptions(device="cpu")

ray = pytest.importorskip("ray", reason="the ray extra (pip install 'shiftaudit[ray]')")

EVERY = {"protocols": ("crop", "embed-black", "embed-inpaint", "scale", "null", "translate-sweep", "scale-sweep",
                       "size-sweep"), "size": 60, "sweep_pixels": 2, "size_sweep": (60, 100, 20)}
SAME = ("protocols", "tallies", "images", "skipped", "config", "model", "frames", "device", "labels")
MODEL = EXAMPLE_MODEL.resolve()
WORKERS = RayOptions(workers=2, cpus_per_worker=0.9, images_per_batch=2)  # reads run at 0 CPUs beside them


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """The photographs in a folder of their own, one too small for size 60, and a file that is no image."""
    d = tmp_path_factory.mktemp("images")
    shutil.copytree(EXAMPLE_IMAGES, d / "photos")
    write_image(d / "tiny.png", __import__("numpy").full((40, 40, 3), 128, "uint8"))
    (d / "notes.txt").write_text("not an image")
    return d


@pytest.fixture(scope="module")
def labels(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    path.write_text("photos/cat_chelsea.jpg,tabby\ncoffee_cup.jpg,504\nnowhere.jpg,1\n")
    return path


def test_the_ray_audit_is_the_in_process_audit_bit_for_bit(cluster, images, labels):
    single = audit(MODEL, images, EVERY, labels=labels, engine_options=CPU)
    on_ray = audit_on_ray(MODEL, images, EVERY, ray=WORKERS, labels=labels)
    assert_valid_report(on_ray)
    for key in SAME:
        assert on_ray[key] == single[key], key
    # the whole report, key order included, but for the time and where it ran
    assert [(k, v) for k, v in on_ray.items() if k not in ("seconds", "ray")] == \
        [(k, v) for k, v in single.items() if k != "seconds"]
    assert on_ray["skipped"][0]["image"] == "notes.txt" and on_ray["skipped"][-1]["image"] == "tiny.png"
    audited = len(single["images"])
    assert on_ray["ray"] == {"address": "auto", "workers": 2, "cpus_per_worker": 0.9, "gpus_per_worker": 0.0,
                             "images_listed": 8, "images_audited": audited, "images_skipped": 8 - audited,
                             "duplicates_dropped": 0}


def _actors() -> list[int]:
    """PIDs of this cluster's audit actors (Ray titles their processes after the class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"MapBatches(AuditWorker)" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_an_actor_killed_mid_audit_changes_nothing(cluster, tmp_path):
    for i in range(3):  # 18 images, one per call: the kill lands while most are still to come
        shutil.copytree(EXAMPLE_IMAGES, tmp_path / f"set{i}")
    options = {"protocols": ("crop", "embed-black", "translate-sweep"), "sweep_pixels": 2}
    single = audit(MODEL, tmp_path, options, engine_options=CPU)
    killed: list[int] = []

    def kill_one(progress) -> None:
        if not killed and progress.images_done >= 1 and (pids := _actors()):
            killed.append(pids[0])
            os.kill(pids[0], signal.SIGKILL)

    on_ray = audit_on_ray(MODEL, tmp_path, options, ray=RayOptions(workers=2, cpus_per_worker=0.9, images_per_batch=1),
                          progress=kill_one)
    assert killed and on_ray["ray"]["images_audited"] == 18
    for key in SAME:
        assert on_ray.get(key) == single.get(key), key


def test_rows_returned_again_are_taken_once(images):
    """A retried task returns its images again: the merge takes each unit once (no cluster needed: the
    actor's class runs here)."""
    worker = AuditWorker(str(MODEL), AuditOptions(protocols=("crop", "scale")).to_json(), {}, None,
                         str(images.resolve()), 0, 1, {})
    paths = sorted(str(p.resolve()) for p in (images / "photos").iterdir())[:3]
    rows = worker({"path": paths, "bytes": [Path(p).read_bytes() for p in paths]})
    parts = [AuditResult.from_json(json.loads(part)) for part in rows["part"]]
    once, twice = Merge(("crop", "scale")), Merge(("crop", "scale"))
    for part in parts:
        once.take(part)
    for part in parts + parts[1:]:
        twice.take(part)
    assert twice.dropped == 2 and once.dropped == 0
    assert {p: s.to_json() for p, s in twice.result.stats.items()} == {p: s.to_json() for p, s in once.result.stats.items()}
    assert twice.result.images == once.result.images and len(once.result.images) == 3


def test_the_command_line_runs_on_the_cluster_this_process_holds(cluster, images, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["--engine", str(MODEL), "--images", str(images), "--ray", "auto", "--ray-workers", "2",
                 "--ray-cpus-per-worker", "0.9", "--protocol", "crop", "--no-progress", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["ray"]["images_audited"] == 7 and "on Ray (auto): 2 workers; 7 images audited, 1 skipped" in \
        capsys.readouterr().out  # tiny.png is cropped (crop needs no size); notes.txt is no image
    for argv, message in ((["--ray", "auto", "--server", "localhost:1"], "neither --server"),
                          (["--ray", "auto", "--shard", "0/2"], "neither --server, --shard"),
                          (["--ray-workers", "0", "--ray", "auto"], "--ray-workers must be at least 1"),
                          (["--ray", "auto", "--onnx-tensorrt"], "--onnx-tensorrt runs ONNX Runtime's TensorRT provider "
                           "on a GPU: give the actors GPUs (--ray-gpus-per-worker above 0)")):
        assert main(["--engine", str(MODEL), "--images", str(images), "--no-progress", *argv]) == 2
        assert message in capsys.readouterr().err
    assert main(["--engine", str(MODEL), "--images", "s3://bucket/val", "--no-progress"]) == 2
    assert "a URI is read by Ray Data (add --ray)" in capsys.readouterr().err
    assert len(list(image_sources(images))) == 8
