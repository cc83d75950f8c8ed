"""Decoding holds the decoded image and its 8-bit result, not full-size temporaries (issue 10, defect 5:
a 1 MB 16-bit RGBA PNG used to take 5.4 GB)."""
from __future__ import annotations

import tracemalloc

import cv2
import numpy as np

from shiftaudit.server.engine.images import decode


def test_a_16_bit_rgba_png_is_converted_without_full_size_temporaries():
    pixels = np.zeros((4096, 4096, 4), np.uint16)
    pixels[..., 3] = 65535
    pixels[:100] = 30000
    data = cv2.imencode(".png", pixels)[1].tobytes()  # 0.15 MB; 128 MiB decoded
    tracemalloc.start()
    try:
        image = decode(data, "deep.png")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert image.pixels.shape == (4096, 4096, 3) and image.pixels[0, 0].tolist() == [54] * 3  # 117 at alpha 117/255
    assert peak < 280 << 20, peak >> 20  # decoded 128 MiB + result 48 MiB + blocks; whole-image: 640 MiB
