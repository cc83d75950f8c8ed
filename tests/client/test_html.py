"""audit-client --html: one page that loads offline with no request of any kind (checked in headless
Chromium with no network at all, and its Content-Security-Policy shown to block what it must), every
figure there, pictures of the most sensitive pairs as the engine saw them, within a size budget."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from shiftaudit.client import audit
from shiftaudit.client.cli import main
from shiftaudit.client.gallery import GALLERY, most_sensitive
from shiftaudit.client.html import render
from shiftaudit.client.summary import summarise
from tests.support import EXAMPLE_IMAGES, write_image
from tests.support.models import cnn

CHROMIUM = shutil.which("chromium")
EVERY_FIGURE = ["--protocol", "crop", "--protocol", "embed-black", "--protocol", "translate-sweep", "--protocol",
                "scale-sweep", "--protocol", "size-sweep", "--size", "60", "--sweep-pixels", "3",
                "--size-sweep", "60:100:20"]


def _chromium(page: Path, shot: Path) -> str:
    """Headless Chromium in a network namespace of its own (no interface up: no request can leave); its
    log, where the page's console messages and CSP violations appear."""
    run = subprocess.run(["unshare", "--net", CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-quic", "--no-first-run", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", f"--user-data-dir={shot.parent / 'profile'}",
                          "--enable-logging=stderr", "--v=0", "--hide-scrollbars", "--window-size=1200,4000",
                          f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    return run.stderr


@pytest.fixture(scope="module")
def page(roots, tmp_path_factory):
    models, _ = roots
    d = tmp_path_factory.mktemp("html")
    labels = d / "labels.csv"
    labels.write_text("cat_chelsea.jpg,tabby\ncoffee_cup.jpg,504\n")
    out = d / "report.html"
    code = main(["--engine", str(models / "lite0.onnx"), "--images", str(EXAMPLE_IMAGES), "--labels", str(labels),
                 "--max-mac", "0.05", "--no-progress", "--html", str(out), "--json", str(d / "report.json"),
                 *EVERY_FIGURE])
    assert code in (0, 1, 4)  # a gate may pass, fail or be inconclusive
    return out


def test_the_page_has_every_figure_and_the_pairs_as_the_engine_saw_them(page):
    text = page.read_text()
    assert 'http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:;' in text
    assert "<script" not in text and not re.search(r"(src|href)=\"(https?:)?//", text)
    for heading in ("Sensitivity by protocol", "translate-sweep sequences (the paper's Fig. 1)",
                    "scale-sweep sequences", "(the paper's Fig. 6)", "(the paper's App. A.4)", "With the labels",
                    "The most sensitive pairs", "What was audited", "Run it again"):
        assert heading in text, heading
    assert text.count("<svg") == 6  # protocols, two sequence plots, size, confidence, labels
    assert text.count('src="data:image/jpeg;base64,') == 2 * GALLERY
    assert "Thumbnails" not in text  # every pair planned again matched the report's placements


@pytest.mark.skipif(not CHROMIUM, reason="no chromium (Debian's package; .ci/run installs it)")
def test_the_page_loads_offline_in_chromium_and_its_policy_blocks_requests(page, tmp_path):
    log = _chromium(page, tmp_path / "page.png")
    mine = [line for line in log.splitlines() if page.as_uri() in line]  # not Chromium's own pages' messages
    assert not mine, mine
    shot = cv2.imread(str(tmp_path / "page.png"))
    assert shot.shape[1] == 1200 and shot.std() > 20  # drawn, not a blank page
    leaky = tmp_path / "leaky.html"  # the same page with one remote picture: the policy must say no
    leaky.write_text(page.read_text().replace("</body>", '<img src="https://example.invalid/x.png"></body>'))
    log = _chromium(leaky, tmp_path / "leaky.png")
    assert any("violates the following Content Security Policy directive" in line
               for line in log.splitlines() if leaky.as_uri() in line), log[-2000:]


def test_without_the_images_or_with_no_thumbnails_the_page_has_no_pictures(page, tmp_path, capsys):
    stored = page.with_suffix(".json")
    for extra, why in (([], "Thumbnails need the images"), (["--images", str(EXAMPLE_IMAGES), "--no-thumbnails"],
                                                            "Thumbnails left out (--no-thumbnails)")):
        out = tmp_path / "again.html"
        assert main(["report", str(stored), "--html", str(out), *extra]) == 0
        text = out.read_text()
        assert "data:image/jpeg" not in text and why in text


def test_a_thousand_images_stay_within_two_megabytes(tmp_path):
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(1000):
        write_image(images / f"{i:04d}.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    model = cnn(tmp_path / "m.onnx", hw=32)
    report = audit(model, images, {"protocols": ("crop", "embed-black"), "size": 16})
    text = render(report, summarise(report, None), images)
    assert len(report["images"]) == 1000 and text.count("data:image/jpeg") == 2 * GALLERY
    assert len(text.encode()) <= 2 * 2**20, len(text.encode())


def test_the_gallery_is_chosen_from_the_records_alone(tmp_path):
    """Largest |Δp| first, ties by image digest: the same pairs from any order of the records (a merged
    sharded report lists them as one audit would, but the choice must not depend on it)."""
    report = audit(cnn(tmp_path / "m.onnx", hw=64), EXAMPLE_IMAGES, {"protocols": ("crop", "embed-black"),
                                                                      "size": 40})
    shuffled = {**report, "images": list(reversed(report["images"]))}
    key = [(p.record["image"], p.unit["protocol"], p.unit["index"], p.first) for p in most_sensitive(report)]
    assert key == [(p.record["image"], p.unit["protocol"], p.unit["index"], p.first) for p in most_sensitive(shuffled)]
    changes = [p.change for p in most_sensitive(report)]
    assert changes == sorted(changes, reverse=True)


def test_a_comparison_page_loads_offline_too(page, tmp_path):
    """audit-client diff --html: the comparison's own page, under the same policy."""
    stored = page.with_suffix(".json")
    out = tmp_path / "compare.html"
    assert main(["diff", str(stored), str(stored), "--html", str(out), "--max-increase-mac", "0"]) == 0
    text = out.read_text()
    assert "default-src 'none'" in text and text.count("<svg") == 1 and "the engines agree on every frame" in text
    if CHROMIUM:
        log = _chromium(out, tmp_path / "compare.png")
        assert not [line for line in log.splitlines() if out.as_uri() in line]
