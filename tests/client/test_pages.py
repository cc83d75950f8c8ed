"""What the pages say and draw, case by case: small samples shown as such, axes that never clip a point,
captions of only what is drawn, the scale pairs' sizes, the comparison's ticks and pictures, the layer
chart's legend off the data, the command that makes the page again, and a merged report's parts. Each page
is loaded in headless Chromium and its screenshot kept (SHIFTAUDIT_SCREENSHOTS=DIR keeps a copy to look at)."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib.figure import Figure

from shiftaudit.client import plots
from shiftaudit.client.cli import main
from tests.client.test_html import CHROMIUM, _chromium
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, write_image
from tests.support.models import cnn, shift_cnn


@pytest.fixture
def figures(monkeypatch) -> list[Figure]:
    """Every figure a page draws, as matplotlib made it (before it became SVG)."""
    drawn: list[Figure] = []
    real = plots.svg

    def keep(fig: Figure) -> str:
        drawn.append(fig)
        return real(fig)
    monkeypatch.setattr(plots, "svg", keep)
    return drawn


def _look(page: Path, tmp_path: Path) -> None:
    """The page in Chromium: no console message of its own; its screenshot drawn, kept to look at."""
    if not CHROMIUM:
        return
    shot = tmp_path / f"{page.stem}.png"
    log = _chromium(page, shot)
    assert not [line for line in log.splitlines() if page.as_uri() in line]
    assert cv2.imread(str(shot)).std() > 20
    if os.environ.get("SHIFTAUDIT_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["SHIFTAUDIT_SCREENSHOTS"]) / shot.name)


def _run(*args) -> int:
    quiet = [] if str(args[0]) in ("report", "merge") else ["--no-progress"]
    return main([str(a) for a in args] + quiet)


def test_sizes_few_images_reach_are_grey_with_their_count_and_no_point_is_clipped(figures, tmp_path, capsys):
    """Sizes 80 and 100 fit only the one large image: their intervals span most of 0-1; they are drawn grey
    with n=1 and left out of the band, and the caption says why. Points at 0 and 1 are drawn whole."""
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):
        write_image(images / f"small{i}.png", rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    write_image(images / "large.png", rng.integers(0, 256, (200, 240, 3), dtype=np.uint8))
    page = tmp_path / "sizes.html"
    code = _run("--engine", cnn(tmp_path / "m.onnx", hw=128, stride=2), "--images", images, "--protocol",
                "size-sweep", "--protocol", "null", "--size-sweep", "40:120:20", "--size", "40", "--html", page)
    assert code == 0, capsys.readouterr().err
    text = page.read_text()
    assert "Grey, with their number of images: sizes measured on fewer than 5 images (2 of 4" in text
    assert "dashed: the gates" not in text  # no gate was set
    sizes_fig = next(f for f in figures if "embedded size" in f.axes[0].get_xlabel())
    assert sorted(t.get_text() for t in sizes_fig.axes[0].texts) == ["n=1"] * 2
    lo, hi = sizes_fig.axes[0].get_ylim()
    assert lo < 0 and hi > 1
    protocols_fig = figures[0]
    assert all(ax.get_xlim()[0] < 0 for ax in protocols_fig.axes)  # null's P and MAC are 0: drawn whole
    _look(page, tmp_path)


def test_scale_cards_give_the_short_side_s_and_the_gates_caption_only_with_gates(tmp_path, capsys):
    page = tmp_path / "scale.html"
    code = _run("--engine", EXAMPLE_MODEL, "--images", EXAMPLE_IMAGES, "--protocol", "scale", "--html", page,
                "--max-mac", "0.5")
    assert code in (0, 1, 4), capsys.readouterr().err
    text = page.read_text()
    assert "short side S 100→101" in text and "size 148" not in text
    assert "dashed: the gates." in text


def test_the_comparison_page_pictures_its_disagreements_and_explains_itself_inline(figures, tmp_path, capsys):
    a, b = cnn(tmp_path / "a.onnx", hw=64, seed=0), cnn(tmp_path / "b.onnx", hw=64, seed=1)
    page = tmp_path / "compare.html"
    code = _run("compare", "--engine", a, "--engine", b, "--images", EXAMPLE_IMAGES, "--size", "40", "--html", page)
    assert code == 0, capsys.readouterr().err
    text = page.read_text()
    table = text[text.index("Frames the engines disagree on"):]
    assert table.count('<img alt="frame" src="data:image/jpeg;base64,') >= 5
    assert "docs/compare.md" not in text and "McNemar p: the exact test" in text
    increases = figures[0]
    for ax in increases.axes:
        assert len([t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]) <= 6
    _look(page, tmp_path)
    code = _run("compare", "--engine", a, "--engine", b, "--images", EXAMPLE_IMAGES, "--size", "40", "--html", page,
                "--no-thumbnails")
    assert code == 0 and "data:image/jpeg" not in page.read_text() and "Pictures left out" in page.read_text()


def test_the_layer_legend_is_off_the_data_and_run_it_again_keeps_layers(figures, tmp_path, capsys):
    model = shift_cnn(tmp_path / "conv.onnx", subsample="conv", hw=64)
    model.with_suffix(".json").write_text('{"mean": [0, 0, 0], "std": [1, 1, 1], "pixel_range": 255}')
    profile, report, page = tmp_path / "profile.json", tmp_path / "report.json", tmp_path / "layers.html"
    assert _run("layers", "--engine", model, "--images", EXAMPLE_IMAGES, "--size", "40", "--json", profile) == 0
    assert _run("--engine", model, "--images", EXAMPLE_IMAGES, "--size", "40", "--json", report) == 0
    assert _run("report", report, "--layers", profile, "--html", page) == 0, capsys.readouterr().err
    chart = next(f for f in figures if "graph order" in f.axes[0].get_xlabel())
    chart.canvas.draw()
    ax = chart.axes[0]
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1  # beside the axes
    run_again = re.search(r"<h2>Run it again</h2>\s*<pre>(.*?)</pre>", page.read_text(), re.S)[1]
    assert f"--layers {profile}" in run_again
    _look(page, tmp_path)


def test_a_merged_page_lists_its_parts_and_sums_their_time(tmp_path, capsys):
    model = cnn(tmp_path / "m.onnx", hw=64)
    parts = [tmp_path / f"part{i}.json" for i in range(2)]
    for i, part in enumerate(parts):
        assert _run("--engine", model, "--images", EXAMPLE_IMAGES, "--size", "40", "--shard", f"{i}/2",
                    "--json", part) == 0
    page = tmp_path / "merged.html"
    assert _run("merge", *parts, "--html", page, "--json", tmp_path / "merged.json") == 0
    out = capsys.readouterr().out
    import json

    seconds = [json.loads(p.read_text())["seconds"] for p in parts]
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["seconds"] == pytest.approx(sum(seconds), abs=2e-3)
    assert f"{sum(seconds):.1f} s summed over its 2 parts" in out
    text = page.read_text()
    assert "Merged from 2 parts" in text and text.count("part0.json") >= 1 and text.count("part1.json") >= 1
    _look(page, tmp_path)
