"""--target-halfwidth: images audited in content-hash order until every protocol's 95 % interval of
P(top-1 change) lies within the target; checked against a count computed by hand, for shuffled file
order, when the images run out, sharded, and on a server."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from shiftaudit.client.api import audit
from shiftaudit.server.engine.consistency import replay
from shiftaudit.server.engine.errors import OptionError
from shiftaudit.server.engine.files import Shard, file_sha256
from shiftaudit.server.engine.metrics import ProtocolStats
from shiftaudit.server.engine.precision import PILOT_IMAGES, PILOT_PAIRS, choose, correlation, images_needed
from shiftaudit.server.engine.report import Report, merge_parts
from shiftaudit.server.engine.runners import EngineOptions
from tests.support import assert_valid_report, write_image
from tests.support.models import cnn

CPU = EngineOptions(device="cpu")

# null compares a frame with itself: P(top-1 change) is 0, and with no change each image counts as one
# trial whatever its pairs (intervals.effective_size), so the interval is Clopper and Pearson's for 0 of k,
# [0, 1 - 0.025^(1/k)]: within ±0.35 once k >= ln 0.025 / ln 0.65 = 8.56, i.e. at the 9th image
NULL = {"protocols": ("null",), "pairs_per_image": 3, "target_halfwidth": 0.35, "size": 40}
BY_HAND = math.ceil(math.log(0.025) / math.log(1 - 0.35))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return cnn(tmp_path_factory.mktemp("model") / "cnn.onnx", hw=64)


@pytest.fixture(scope="module")
def noise(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(5)
    for i in range(10):
        write_image(d / f"n{i}.png", rng.integers(0, 256, (80, 90, 3), dtype=np.uint8))
    (d / "broken.png").write_bytes(b"not a png")
    return d


def test_the_audit_stops_at_the_image_count_computed_by_hand(model, noise):
    assert BY_HAND == 9
    report = audit(model, noise, NULL, engine_options=CPU)
    assert_valid_report(report)
    assert report["target"] == {"halfwidth": 0.35, "reached": True, "images": 9, "images_listed": 11}
    assert report["protocols"]["null"]["pairs"] == 27 and report["frames"] == 54
    by_hash = sorted(noise.iterdir(), key=file_sha256)
    used = [p.name for p in by_hash if p.name != "broken.png"][:9]
    assert [r["image"] for r in report["images"]] == used
    # the broken file is skipped only if it comes before the ninth image in content-hash order
    before = [p.name for p in by_hash[:by_hash.index(noise / used[-1]) + 1]]
    assert [s["image"] for s in report["skipped"]] == (["broken.png"] if "broken.png" in before else [])


def test_the_same_images_count_whatever_the_files_are_called(model, noise, tmp_path):
    shuffled = tmp_path / "shuffled"
    for i, path in enumerate(sorted(noise.iterdir(), reverse=True)):
        (shuffled / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, shuffled / f"d{i % 3}" / f"{9 - i}-{path.name}")
    a, b = audit(model, noise, NULL, engine_options=CPU), audit(model, shuffled, NULL, engine_options=CPU)
    assert a["tallies"] == b["tallies"] and a["target"] == b["target"]
    assert [r["sha256"] for r in a["images"]] == [r["sha256"] for r in b["images"]]


def test_when_the_images_run_out_the_report_says_so(model, noise, capsys):
    report = audit(model, noise, {**NULL, "target_halfwidth": 0.01}, engine_options=CPU)
    assert report["target"] == {"halfwidth": 0.01, "reached": False, "images": 10, "images_listed": 11}
    from shiftaudit.client.summary import summarise
    assert "target +-0.01 NOT reached: the images ran out after 10 images; null is still +-0.308" in \
        summarise(report, None).target
    with pytest.raises(OptionError, match="target half-width"):
        audit(model, noise, {**NULL, "target_halfwidth": 0.7}, engine_options=CPU)


def test_each_shard_reaches_the_target_on_its_own_images(model, noise):
    parts = [(f"p{i}", audit(model, noise, NULL, engine_options=CPU, shard=Shard(i, 2))) for i in range(2)]
    merged = merge_parts([(name, Report.from_json(p)) for name, p in parts]).to_json()
    assert merged["target"]["images"] == sum(p["target"]["images"] for _, p in parts)
    assert merged["target"]["reached"] == all(p["target"]["reached"] for _, p in parts)
    assert merged["target"]["images_listed"] == 11


def test_a_server_stops_at_the_same_image(roots, server, noise, many):
    """The option travels in the API message; the server orders its dataset by content as well."""
    from shiftaudit.client.remote import AuditClient
    from shiftaudit.server.engine.options import AuditOptions

    models, _ = roots
    local = audit(models / "sub" / "small.onnx", noise, NULL, engine_options=CPU)
    with AuditClient(server.target) as client:
        remote = client.run("sub/small.onnx", AuditOptions(**NULL), images=noise)
    assert remote["target"] == local["target"] and remote["tallies"] == local["tallies"]
    assert [r["image"] for r in remote["images"]] == [r["image"] for r in local["images"]]
    chosen = {**CHOOSE, "protocols": ("crop",)}  # --choose-pairs travels in the API message too
    local = audit(models / "sub" / "small.onnx", many, chosen, engine_options=CPU)
    with AuditClient(server.target) as client:
        remote = client.run("sub/small.onnx", AuditOptions(**chosen), images=many)
    assert remote["target"] == local["target"] and remote["target"]["choices"]
    assert remote["tallies"] == local["tallies"]


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(11)
    for i in range(40):
        write_image(d / f"m{i}.png", rng.integers(0, 256, (80, 90, 3), dtype=np.uint8))
    return d


CHOOSE = {"protocols": ("crop", "embed-black"), "size": 40, "target_halfwidth": 0.15, "choose_pairs": True}


def test_the_pairs_chosen_after_the_pilot_are_those_its_records_give_whatever_the_batch(model, many):
    """The first 10 images (content-hash order) at 2 pairs each; the choice made from their scores alone
    (replayed from their records: the same choice), the rest of the images at the pairs chosen; the same
    report at a batch of 1, 7 or 64 frames (the planning waits for the pilot's scores)."""
    reports = [audit(model, many, {**CHOOSE, "batch": batch}, engine_options=CPU) for batch in (1, 7, 64)]
    assert reports[0]["tallies"] == reports[1]["tallies"] == reports[2]["tallies"]
    assert reports[0]["target"] == reports[1]["target"] == reports[2]["target"]
    report = reports[0]
    assert_valid_report(report)
    [choice] = report["target"]["choices"]
    assert choice["pilot_images"] == PILOT_IMAGES and choice["pilot_pairs"] == PILOT_PAIRS
    pilot, rest = report["images"][:PILOT_IMAGES], report["images"][PILOT_IMAGES:]
    assert all(len(r["units"]) == 2 * PILOT_PAIRS for r in pilot)
    assert rest and all(len(r["units"]) == 2 * choice["pairs"] for r in rest)
    replayed = replay(pilot, {p: "pair" for p in CHOOSE["protocols"]}, set())
    frames = sum(len(u["top1"]) for r in pilot for u in r["units"])
    again = choose(replayed, PILOT_IMAGES, PILOT_PAIRS, frames, 0.15, 40)
    assert again.to_json() == choice
    assert report["config"]["choose_pairs"] is True
    from shiftaudit.client.summary import summarise
    assert f"; {choice['reason']}" in summarise(report, None).target


def test_what_the_choice_weighs_computed_by_hand():
    """With nothing seen the images needed are those of none in k, ln 0.025 / ln(1 - H), whatever the
    pairs; alike pairs (all or none of an image's change) have correlation 1, one change in every pair of
    two none (clipped at 0); one pair per image when the images suffice, more when they would run out,
    and within 10 % of the fewest images when none suffices."""
    by_hand = math.ceil(math.log(0.025) / math.log(1 - 0.02))
    assert list(images_needed(0.0, None, np.array([1, 4, 20]), 0.02)) == [by_hand] * 3
    alike, split = ProtocolStats("pair"), ProtocolStats("pair")
    for i in range(10):
        for stats, changes in ((alike, [i % 2] * 2), (split, [1, 0])):
            one = ProtocolStats("pair")
            one.overall.add(np.array(changes, bool), np.zeros(2))
            stats.add_image(one)
    assert correlation(alike.overall) == pytest.approx(1.0) and correlation(split.overall) == 0.0
    plenty = choose({"crop": alike}, 10, 2, 40, 0.05, None)
    assert plenty.pairs == 1 and "more pairs of one image cost more frames than new images" in plenty.reason
    few = choose({"crop": split}, 10, 2, 40, 0.05, 100)  # no correlation: pairs are as good as images
    one = int(images_needed(0.5, 0.0, np.array([1]), 0.05)[0])
    assert one > 100 and few.pairs > 1 and few.images_needed <= 100
    assert f"1 pair per image would need about {one} images and 100 are listed" in few.reason
    short = choose({"crop": alike}, 10, 2, 40, 0.05, 100)  # alike pairs add nothing: out of reach
    assert short.pairs == 1 and "cannot reach +-0.05 at any pairs per image" in short.reason


def test_choosing_pairs_needs_a_target(model, noise):
    with pytest.raises(OptionError, match="choose_pairs chooses for a target: give target_halfwidth too"):
        audit(model, noise, {"protocols": ("crop",), "choose_pairs": True}, engine_options=CPU)
