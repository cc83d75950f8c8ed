"""The kernels' NumPy reference on known answers (the kernels themselves are checked against it)."""
from __future__ import annotations

import numpy as np
import pytest

from shiftaudit.kernels.reference import BINOMIAL5, inpaint


def test_one_inpainting_pass_is_the_binomial_average_of_known_neighbours():
    canvas = np.zeros((9, 9, 1), np.float32)
    known = np.zeros((9, 9), bool)
    canvas[4, 4], known[4, 4] = 10.0, True
    canvas[4, 5], known[4, 5] = 20.0, True
    out = inpaint(canvas, known)
    k = BINOMIAL5
    # pixel (4, 3): neighbours (4,4) at dx=1 and (4,5) at dx=2, same row
    expect = (k[2] * k[3] * 10 + k[2] * k[4] * 20) / (k[2] * k[3] + k[2] * k[4])
    assert out[4, 3, 0] == pytest.approx(expect, rel=1e-6)
    assert out[4, 4, 0] == 10 and out[4, 5, 0] == 20
