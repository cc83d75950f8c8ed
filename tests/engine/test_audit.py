"""The audit itself: deterministic, mergeable across shards, cancellable, bounded on hostile input."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from shiftaudit.server.engine.audit import run_audit
from shiftaudit.server.engine.images import ImageError, declared_size, decode, read
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.engine.render.cpu import CpuRenderer
from shiftaudit.server.engine.runners import open_runner
from tests.support.models import cnn


@pytest.fixture
def small_model(tmp_path):
    return cnn(tmp_path / "small.onnx", hw=64, stride=2)


def test_same_seed_same_metrics_and_shards_merge_to_the_whole(tmp_path, example_images, small_model):
    cfg = AuditOptions(canvas=(64, 64), size=40, pairs_per_image=2, seed=7, batch=5,
                       protocols=("crop", "embed-black", "translate-sweep", "size-sweep"))
    sources = [(p.name, lambda p=p: read(p, p.name)) for p in sorted(example_images.iterdir())]
    pre = Preprocessing()
    with open_runner(small_model) as runner:
        whole = run_audit(runner, sources, pre, cfg)
        again = run_audit(runner, list(reversed(sources)), pre, replace(cfg, batch=3))
        shards = [run_audit(runner, sources[i::3], pre, cfg) for i in range(3)]
    merged = shards[0]
    for s in shards[1:]:
        merged.merge(s)
    for other in (again, merged):
        for name, stats in whole.stats.items():
            a, b = stats.summary(), other.stats[name].summary()
            assert a["pairs"] == b["pairs"] and a["p_top1_change"] == b["p_top1_change"]
            assert a["mac"]["value"] == pytest.approx(b["mac"]["value"], abs=1e-9)
    assert whole.stats["crop"].overall.pairs == 12


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):

    ok, png = cv2.imencode(".png", np.zeros((3000, 20000), np.uint8))
    assert declared_size(png.tobytes()) == (20000, 3000)
    data = bytearray(cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes())
    data[16:24] = (100000).to_bytes(4, "big") + (100000).to_bytes(4, "big")  # header lies: 10^10 pixels
    with pytest.raises(ImageError, match="declares 100000x100000 pixels"):
        decode(bytes(data), "bomb.png")
    jpg = cv2.imencode(".jpg", np.zeros((37, 53, 3), np.uint8))[1].tobytes()
    assert declared_size(jpg) == (53, 37)


def test_a_cancel_stops_the_rendering_too(tmp_path, example_images, small_model):
    """After the caller asks to stop, at most the batches already queued or in the renderer's hands
    are rendered (2 waiting + 1), not the rest of the audit; the audit ends interrupted, with every image
    left (none was finished: 40 pairs an image, 4 frames a batch)."""
    rendered = []
    seen = []

    class Counting(CpuRenderer):
        def render(self, frames, norm, layout, dtype):
            rendered.append(len(frames))
            return super().render(frames, norm, layout, dtype)

    cfg = AuditOptions(canvas=(64, 64), size=40, pairs_per_image=40, batch=4, protocols=("embed-black",))
    sources = [(p.name, lambda p=p: read(p, p.name)) for p in sorted(example_images.iterdir())]
    with open_runner(small_model) as runner:
        result = run_audit(runner, sources, Preprocessing(), cfg, progress=seen.append,
                           should_stop=lambda: len(seen) >= 1, renderer=Counting())
    assert 1 <= len(rendered) <= 4  # of 120 batches in the whole audit
    assert (result.images, result.frames, result.left) == ([], 0, [name for name, _ in sources])


def test_options_not_resolved_against_the_model_are_refused(small_model, example_images):
    """No canvas or batch yet: an audit would not know its frames' size or how many to render at once."""
    sources = [(p.name, lambda p=p: read(p, p.name)) for p in sorted(example_images.iterdir())]
    with open_runner(small_model) as runner:
        for options in (AuditOptions(size=40), AuditOptions(size=40, canvas=(64, 64))):
            with pytest.raises(ValueError, match="resolve them against the model first"):
                run_audit(runner, sources, Preprocessing(), options)
        resolved = AuditOptions(size=40, protocols=("crop",)).resolved(runner.input_spec())
        assert (resolved.canvas, resolved.batch) == ((64, 64), 32)
        assert run_audit(runner, sources, Preprocessing(), resolved).stats["crop"].overall.pairs == 6

