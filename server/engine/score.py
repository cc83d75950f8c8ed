"""Scoring: engine outputs -> probabilities -> per-unit top-1 classes and p[c*].

c* is the top class of a unit's first frame; following it through every frame gives MAC for pairs
and the jagged curve for sequences (paper Fig. 1).
"""
from __future__ import annotations

import numpy as np

from shiftaudit.kernels.reference import softmax

from .metrics import UnitScore


def detect_output_kind(out: np.ndarray) -> str:
    """``probabilities`` when every row is non-negative and sums to 1 (a softmax head), else ``logits``."""
    out = out.astype(np.float64)
    if out.min() >= 0 and np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
        return "probabilities"
    return "logits"


def probabilities(out: np.ndarray, kind: str) -> np.ndarray:
    """Row-wise softmax of logits (float64, as the score kernels' reference); probabilities pass through."""
    return out.astype(np.float64) if kind == "probabilities" else softmax(out)


def score_unit(probs: np.ndarray) -> UnitScore:
    """(T, C) probabilities of one unit's frames."""
    top1 = probs.argmax(axis=1)
    return UnitScore(top1, probs[:, top1[0]])
