"""The report's size bound (issue 26, case 6): a server reserves it against max_state_bytes before an
audit runs, so it must hold for every protocol and option that adds to a report, with long non-ASCII
class and image names, and not be so loose that it refuses what fits."""
from __future__ import annotations

import json
import shutil

import pytest

from shiftaudit.server.engine.images import image_sources
from shiftaudit.server.engine.job import Job
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.runners import open_runner
from tests.support import EXAMPLE_IMAGES
from tests.support.models import cnn

SWEEPS = dict(sweep_pixels=2, sweep_step=0.5, size_sweep=(24, 40, 8))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("size")
    model = cnn(root / "m.onnx", hw=64, stride=2, classes=12)
    (root / "classes.txt").write_text("".join(f"classe n°{i} — {'é' * 60}\n" for i in range(12)))
    (root / "m.json").write_text(json.dumps({"labels": "classes.txt"}))
    images = root / "images"
    images.mkdir()
    for i, f in enumerate(sorted(EXAMPLE_IMAGES.iterdir())):
        shutil.copy(f, images / f"{'ü' * 40}_{i}{f.suffix}")
    (images / "not_an_image.jpg").write_bytes(b"junk")  # skipped, with its reason
    return model, images


@pytest.mark.parametrize("options,loose", [
    (AuditOptions(size=40, protocols=("crop", "embed-black", "embed-inpaint", "scale", "null")), 6),
    (AuditOptions(size=40, pairs_per_image=5, protocols=("translate-sweep", "scale-sweep", "size-sweep"), **SWEEPS), 6),
    (AuditOptions(size=40, pairs_per_image=3, seed=7, protocols=("size-sweep", "scale", "crop"), **SWEEPS), 6),
    # the pairs a choice may take are up to 64 per image: the bound reserves for them all
    (AuditOptions(size=24, target_halfwidth=0.2, choose_pairs=True, protocols=("embed-black",)), 64),
], ids=["pairs", "sweeps", "mixed", "choose-pairs"])
def test_the_bound_holds_and_is_not_loose(setup, options, loose):
    model, images = setup
    runner = open_runner(model)
    try:
        job = Job.prepare(model, runner, options, image_sources(images, by_content=options.target_halfwidth
                                                                is not None))
        bound = job.report_bytes_bound()
        size = len(json.dumps(job.run(), allow_nan=False))
    finally:
        runner.close()
    assert size <= bound, (size, bound)
    assert bound <= loose * size, (size, bound)
