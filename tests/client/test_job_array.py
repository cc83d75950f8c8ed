"""Job arrays: ``audit-client --shard I/N`` parts merged by ``audit-client merge`` give the report of one
audit of every image; a shard given twice, a missing one, another split or other options are refused;
and the Kubernetes manifests in docs/deploy.md are valid (Kubernetes' own schema) and, run as their
shell commands say, make that report."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from shiftaudit.client.api import audit
from shiftaudit.client.cli import main
from shiftaudit.server.engine.files import Shard
from shiftaudit.server.engine.runners import EngineOptions
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, ROOT, assert_valid_report
from tests.support.models import cnn

CPU = EngineOptions(device="cpu")

OPTIONS = {"protocols": ("crop", "embed-black"), "size": 40, "pairs_per_image": 2}
SAME = ("protocols", "tallies", "images", "skipped", "config", "labels")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return cnn(tmp_path_factory.mktemp("model") / "cnn.onnx", hw=64)


@pytest.fixture(scope="module")
def labels(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    path.write_text("cat_chelsea.jpg,1\ncoffee_cup.jpg,2\nrocket_falcon9_launch.jpg,3\nnot_an_image.jpg,4\n")
    return path


def _parts(model: Path, labels: Path, count: int, d: Path) -> list[Path]:
    paths = []
    for i in range(count):
        part = audit(model, EXAMPLE_IMAGES, OPTIONS, labels=labels, engine_options=CPU, shard=Shard(i, count))
        paths.append(d / f"part-{i}.json")
        paths[-1].write_text(json.dumps(part))
    return paths


@pytest.mark.parametrize("count", [3, 8])  # 8 shards of 6 images: some hold none
def test_the_parts_merge_to_one_audit_of_every_image(model, labels, count, tmp_path):
    whole = audit(model, EXAMPLE_IMAGES, OPTIONS, labels=labels, engine_options=CPU)
    parts = _parts(model, labels, count, tmp_path)
    sizes = [len(json.loads(p.read_text())["images"]) for p in parts]
    assert sum(sizes) == len(whole["images"]) and (count == 3 or 0 in sizes)
    assert main(["merge", *map(str, reversed(parts)), "--json", str(tmp_path / "merged.json")]) == 0
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert_valid_report(merged)
    for key in SAME:
        assert merged[key] == whole[key], key
    assert merged["labels"]["unknown_names"] == {"count": 1, "first": ["not_an_image.jpg"]}
    assert [s["server"] for s in merged["shards"]] == [p.name for p in reversed(parts)] and "shard" not in merged


def test_what_is_not_one_audit_is_refused_in_one_line(model, labels, tmp_path, capsys):
    parts = _parts(model, labels, 3, tmp_path)
    other = tmp_path / "other-seed.json"
    other.write_text(json.dumps(audit(model, EXAMPLE_IMAGES, {**OPTIONS, "seed": 1}, engine_options=CPU, shard=Shard(2, 3))))
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps(audit(model, EXAMPLE_IMAGES, OPTIONS, engine_options=CPU)))
    split = tmp_path / "split-in-2.json"
    split.write_text(json.dumps(audit(model, EXAMPLE_IMAGES, OPTIONS, engine_options=CPU, shard=Shard(1, 2))))
    cases = [([parts[0], parts[1], parts[1], parts[2]], "shard 1 of 3 is given twice"),
             ([parts[0], parts[2]], "shard 1 of 3 missing"),
             ([parts[0], parts[1], other], "its report's config differs"),
             ([parts[0], whole], "whole.json: not a part of a sharded audit"),
             ([parts[0], split], "split-in-2.json is shard 1 of 2")]
    for given, message in cases:
        assert main(["merge", *map(str, given), "--json", str(tmp_path / "m.json")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (message, err)
    assert not (tmp_path / "m.json").exists()


def _tampered(part: dict, how: str) -> dict:
    """``part`` edited as a hand might edit it; each must be refused by the merge."""
    doc = json.loads(json.dumps(part))
    changed = next(p for p, t in doc["tallies"].items() if t["overall"][1] > 0)  # a protocol with a change
    overall = doc["tallies"][changed]["overall"]
    if how == "one change fewer":
        overall[1] -= 1
    elif how == "a negative MAC sum":
        overall[2] = -overall[2]
    elif how == "a hundred times the pairs":
        overall[0] *= 100
    elif how == "more changes than pairs":
        overall[1] = overall[0] + 5
    elif how == "a record twice":
        doc["images"].append(doc["images"][0])
    elif how == "a record removed":
        doc["images"].pop()
    elif how == "other frames":
        doc["frames"] = 9999
    elif how == "a protocol removed":
        del doc["tallies"][changed]
    return doc


TAMPERINGS = {"one change fewer": "its tallies count", "a negative MAC sum": "out of bounds",
              "a hundred times the pairs": "00 pairs and", "more changes than pairs": "out of bounds",
              "a record twice": "is recorded twice", "a record removed": "its records hold",
              "other frames": "it says 9999 frames", "a protocol removed": "missing:"}


@pytest.fixture(scope="module")
def halves() -> list[dict]:
    """The example model's audit in two parts, with changes to count."""
    options = {"protocols": ("crop", "embed-black", "translate-sweep"), "pairs_per_image": 2, "sweep_pixels": 2}
    return [audit(EXAMPLE_MODEL, EXAMPLE_IMAGES, options, engine_options=CPU, shard=Shard(i, 2)) for i in range(2)]


@pytest.mark.parametrize("how", TAMPERINGS)
def test_a_part_that_disagrees_with_its_own_records_is_refused(how, halves, tmp_path, capsys):
    """A part is a file anyone can edit: its tallies are replayed from its own records before the merge,
    so an edit that would turn a failing gate into a pass (or crash the merge) is refused, named."""
    parts = halves
    paths = [tmp_path / "part-0.json", tmp_path / "part-1.json"]
    paths[0].write_text(json.dumps(parts[0]))
    bad = parts[1] if any(t["overall"][1] for t in parts[1]["tallies"].values()) else parts[0]
    paths[1].write_text(json.dumps(parts[1]))
    assert main(["merge", *map(str, paths), "--max-p-top1-change", "1"]) == 0  # untouched, they merge
    capsys.readouterr()
    edited = paths[parts.index(bad)]
    edited.write_text(json.dumps(_tampered(bad, how)))
    assert main(["merge", *map(str, paths), "--json", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and edited.name in err[0] and TAMPERINGS[how] in err[0], (how, err)
    assert not (tmp_path / "m.json").exists()


def _manifests() -> list[dict]:
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text[text.index("## Job arrays"):]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return [doc for block in blocks for doc in yaml.safe_load_all(block)]


def test_the_indexed_job_manifests_are_valid_kubernetes(tmp_path):
    parts, merge = _manifests()
    for doc in (parts, merge):
        kubernetes_validate.validate(doc, "1.37.0", strict=True)  # raises on any error
    spec = parts["spec"]
    command = spec["template"]["spec"]["containers"][0]["args"][0]
    count = int(re.search(r'--shard "\$JOB_COMPLETION_INDEX/(\d+)"', command).group(1))
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == count
    assert spec["backoffLimitPerIndex"] >= 1 and spec["maxFailedIndexes"] == 0
    rule = spec["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailIndex" and rule["onExitCodes"]["values"] == [2]
    assert "audit-client merge /results/part-*.json" in merge["spec"]["template"]["spec"]["containers"][0]["args"][0]


def test_the_manifests_commands_make_the_report_of_one_audit(tmp_path):
    """The parts' and the merge's shell commands as the manifests give them, run here with each index
    (the paths swapped for this machine's): the merged report is one audit's."""
    parts, merge = _manifests()
    model = cnn(tmp_path / "model.onnx", hw=128)  # the commands' default embedded size, 100, fits
    (tmp_path / "results").mkdir()
    here = {"/models/model.onnx": str(model), "/data/val": str(EXAMPLE_IMAGES), "/results": str(tmp_path / "results")}

    def local(command: str) -> str:
        for there, path in here.items():
            command = command.replace(there, path)
        return command

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = local(parts["spec"]["template"]["spec"]["containers"][0]["args"][0])
    runs = [subprocess.Popen(["sh", "-c", command], env={**env, "JOB_COMPLETION_INDEX": str(i)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for i in range(parts["spec"]["completions"])]
    for run in runs:
        assert run.wait(timeout=300) == 0, run.stderr.read()
    merged = subprocess.run(["sh", "-c", local(merge["spec"]["template"]["spec"]["containers"][0]["args"][0])],
                            env=env, capture_output=True, text=True, timeout=300)
    assert merged.returncode in (0, 1, 4), merged.stderr  # the gate passed, failed or was inconclusive
    report = json.loads((tmp_path / "results" / "report.json").read_text())
    whole = audit(model, EXAMPLE_IMAGES, {"seed": 0}, engine_options=CPU)
    assert report["tallies"] == whole["tallies"] and report["images"] == whole["images"]
    assert (tmp_path / "results" / "report.html").exists()


def test_a_part_audited_on_a_server_merges_with_one_audited_here(roots, server, labels, tmp_path, capsys):
    models, _ = roots
    small = models / "sub" / "small.onnx"
    common = ["--images", str(EXAMPLE_IMAGES), "--size", "40", "--labels", str(labels), "--no-progress"]
    assert main(["--engine", "sub/small.onnx", "--server", server.target, "--shard", "0/2", *common,
                 "--json", str(tmp_path / "p0.json")]) == 0
    assert main(["--engine", str(small), "--shard", "1/2", *common, "--json", str(tmp_path / "p1.json")]) == 0
    assert main(["merge", str(tmp_path / "p0.json"), str(tmp_path / "p1.json"), "--json", str(tmp_path / "m.json")]) == 0
    merged = json.loads((tmp_path / "m.json").read_text())
    whole = audit(small, EXAMPLE_IMAGES, {"size": 40}, labels=labels, engine_options=CPU)
    for key in ("protocols", "tallies", "images", "labels"):
        assert merged[key] == whole[key], key
    empty = next(i for i in range(8) if not Shard(i, 8).select([(n, EXAMPLE_IMAGES / n) for n in
                                                                  sorted(p.name for p in EXAMPLE_IMAGES.iterdir())]))
    capsys.readouterr()
    assert main(["--engine", "sub/small.onnx", "--server", server.target, "--shard", f"{empty}/8", *common]) == 2
    assert "holds none of the 6 images" in capsys.readouterr().err
