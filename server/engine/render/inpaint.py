"""Inpainting by iterated normalised convolution, as in the paper's code (protocol 3).

Each pass replaces every unknown pixel that has known neighbours by the binomial-weighted average of
those neighbours; known pixels are never changed. Passes repeat until nothing is unknown, so the
black border grows inwards from the image by the kernel's radius per pass.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

BINOMIAL5 = np.array([1, 4, 6, 4, 1], np.float32) / 16


def passes_needed(canvas_hw: tuple[int, int], kernel: np.ndarray = BINOMIAL5) -> int:
    """Enough passes to reach every canvas pixel from any single known pixel."""
    return math.ceil(max(canvas_hw) / (len(kernel) // 2)) + 1


def inpaint(canvas: np.ndarray, known: np.ndarray, kernel: np.ndarray = BINOMIAL5) -> np.ndarray:
    """(H, W, C) float32 canvas with the pixels outside ``known`` filled."""
    if not known.any():
        raise ValueError("nothing to inpaint from: no known pixel on the canvas")
    known = known.copy()
    values = np.where(known[..., None], canvas, 0).astype(np.float32)
    for _ in range(passes_needed(known.shape, kernel)):
        if known.all():
            break
        weight = known.astype(np.float32)
        num = cv2.sepFilter2D(values, -1, kernel, kernel, borderType=cv2.BORDER_CONSTANT).reshape(values.shape)
        den = cv2.sepFilter2D(weight, -1, kernel, kernel, borderType=cv2.BORDER_CONSTANT)
        new = ~known & (den > 1e-6)
        values[new] = num[new] / den[new][:, None]
        known |= new
    return values
