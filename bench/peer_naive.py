"""The peer a user would write instead of shiftaudit: OpenCV's resize onto a black canvas, NumPy's
normalisation, ONNX Runtime, in one loop, on the same frames (the placements our planner draws: the same
crop windows, sizes and origins) and the same batch. `bench/cpu_overhead.py` times its loop beside the
audit and prints shiftaudit / peer per protocol; `bench/whole_process.py` runs it as a user does,

    python bench/peer_naive.py --engine MODEL.onnx --images DIR --protocol embed-black [--pairs-per-image 8]

beside ``audit-client`` on the same work, process start included.

What the peer does per protocol (each with ``cv2.INTER_AREA`` when shrinking, ``INTER_LINEAR`` when
enlarging, as a user would pick):
- crop: the crop window resized to (H+|dy|)×(W+|dx|), the two frames windowed from it;
- embed-black: the image resized to its embedded size and pasted at frame A's and frame B's origins;
- scale: the image resized to both embedded sizes, each pasted at the shared origin;
- null: one frame, inferred twice.
It scores nothing beyond top-1 and the probability of the first frame's class: the least a user needs.
embed-inpaint and the sweeps are left out (the peer has no inpainting of this definition, and sweeps
are many frames a unit).
"""
from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from shiftaudit.server.engine.geometry import Placement
from shiftaudit.server.engine.images import SourceImage
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.preprocessing import Preprocessing, load_preprocessing
from shiftaudit.server.engine.protocols import plan

PROTOCOLS = ("crop", "embed-black", "scale", "null")


def _resized(src: np.ndarray, window: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    x, y, w, h = window
    shrink = size[0] < w or size[1] < h
    return cv2.resize(src[y:y + h, x:x + w], size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _frame(resized: np.ndarray, p: Placement) -> np.ndarray:
    """``resized`` pasted (or windowed, where it overhangs) at the placement's whole-pixel origin."""
    H, W = p.canvas
    canvas = np.zeros((H, W, 3), np.uint8)
    x, y = int(p.dst[0]), int(p.dst[1])
    h, w = resized.shape[:2]
    cy0, cx0, cy1, cx1 = max(0, y), max(0, x), min(H, y + h), min(W, x + w)
    canvas[cy0:cy1, cx0:cx1] = resized[cy0 - y:cy1 - y, cx0 - x:cx1 - x]
    return canvas


def frames(image: SourceImage, protocol: str, cfg: AuditOptions) -> list[np.ndarray]:
    """The unit frames of one image, as the peer renders them (uint8 RGB canvases)."""
    out = []
    for unit in plan(protocol, image.size, image.digest, cfg):
        if protocol == "null":
            a = _frame(_resized(image.pixels, unit.frames[0].src, unit.frames[0].dst[2:]), unit.frames[0])
            out += [a, a]
        elif protocol == "scale":
            out += [_frame(_resized(image.pixels, p.src, p.dst[2:]), p) for p in unit.frames]
        else:  # crop and embed-black: one resize, two placements of it
            resized = _resized(image.pixels, unit.frames[0].src, unit.frames[0].dst[2:])
            out += [_frame(resized, p) for p in unit.frames]
    return out


def run(session, images: list[SourceImage], protocol: str, cfg: AuditOptions, pre: Preprocessing
        ) -> tuple[int, float, int]:
    """(frames, seconds, top-1 changes) of the peer's audit of ``images``: render, normalise, infer batch by
    batch, and compare each pair's top-1."""
    name = session.get_inputs()[0].name
    mean = np.asarray(pre.mean, np.float32) * (255 / pre.pixel_range)
    std = np.asarray(pre.std, np.float32) * (255 / pre.pixel_range)
    start = time.perf_counter()
    pending: list[np.ndarray] = []
    changes = count = 0

    def infer(batch: list[np.ndarray]) -> None:
        nonlocal changes, count
        x = ((np.stack(batch).astype(np.float32) - mean) / std).transpose(0, 3, 1, 2)
        logits = session.run(None, {name: np.ascontiguousarray(x)})[0]
        top = logits.argmax(axis=1)
        changes += int((top[0::2] != top[1::2]).sum())
        count += len(batch)

    for image in images:
        pending += frames(image, protocol, cfg)
        while len(pending) >= cfg.batch:
            infer(pending[:cfg.batch])
            pending = pending[cfg.batch:]
    if pending:
        infer(pending)
    return count, time.perf_counter() - start, changes


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="The naive peer of audit-client, as a user would run it.")
    ap.add_argument("--engine", type=Path, required=True, help="an ONNX model with a fixed input size")
    ap.add_argument("--images", type=Path, required=True, help="a directory of images (.jpg, .jpeg, .png)")
    ap.add_argument("--protocol", choices=PROTOCOLS, required=True)
    ap.add_argument("--pairs-per-image", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args(argv)
    session = ort.InferenceSession(str(args.engine), providers=["CPUExecutionProvider"])
    h, w = session.get_inputs()[0].shape[2:]
    images = []
    for path in sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        data = path.read_bytes()
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        images.append(SourceImage(path.name, hashlib.sha256(data).hexdigest(), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    cfg = AuditOptions(protocols=(args.protocol,), pairs_per_image=args.pairs_per_image, canvas=(h, w), batch=args.batch)
    frames, _, changes = run(session, images, args.protocol, cfg, load_preprocessing(args.engine))
    print(f"{args.protocol}: {frames} frames, {changes} of {frames // 2} pairs changed top-1")


if __name__ == "__main__":
    main()
