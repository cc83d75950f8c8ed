"""Regenerate ``examples/images/`` and check the ONNX classifier on them.

One-off offline helper; its outputs (the JPEGs under ``examples/images/``) are
committed, so shiftaudit never needs scikit-image or network access at run
time. Requirements (pip)::

    pip install scikit-image==0.26.0 pillow numpy onnxruntime

All pictures are copied from the sample data bundled *inside* the
scikit-image wheel (``skimage/data/``); nothing is downloaded. Each is saved
as baseline JPEG, quality 95, without metadata, at its original size (no
resizing). ``rocket.jpg`` is stored in Adobe RGB (1998) in the wheel; it is
converted to sRGB so that every example is plain sRGB and a decoder that
ignores ICC profiles sees the intended colours. The others carry no profile
or an sRGB one and their pixels are kept as they are.

Usage (from the repository root)::

    python examples/build_example_images.py           # write images + check
    python examples/build_example_images.py --check   # only run the check

The check runs ``examples/efficientnet_lite0.onnx`` on each image with the
preprocessing of ``examples/efficientnet_lite0.json``: resize the short side
to 256 (PIL bilinear, which is antialiased when downscaling), centre-crop
224x224, RGB, ``(pixel - mean) / std`` with pixels in 0..255, NCHW float32;
and prints the top-1 class with its softmax probability.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGES = os.path.join(HERE, "images")

# output name -> file name inside skimage/data/ of the scikit-image wheel
SOURCES = {
    "cat_chelsea.jpg": "chelsea.png",
    "coffee_cup.jpg": "coffee.png",
    "astronaut_eileen_collins.jpg": "astronaut.png",
    "rocket_falcon9_launch.jpg": "rocket.jpg",
    "motorcycle_left.jpg": "motorcycle_left.png",
    "motorcycle_right.jpg": "motorcycle_right.png",
}


def to_srgb(im: Image.Image) -> Image.Image:
    icc = im.info.get("icc_profile")
    if not icc:
        return im.convert("RGB")
    from PIL import ImageCms

    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    if "sRGB" in ImageCms.getProfileDescription(src):
        return im.convert("RGB")
    dst = ImageCms.createProfile("sRGB")
    return ImageCms.profileToProfile(im, src, dst, outputMode="RGB")


def write_images() -> None:
    import skimage

    data_dir = os.path.join(os.path.dirname(skimage.__file__), "data")
    os.makedirs(IMAGES, exist_ok=True)
    for out_name, src_name in SOURCES.items():
        with Image.open(os.path.join(data_dir, src_name)) as im:
            im.load()
            rgb = to_srgb(im)
        # Fresh image: drops ICC/XMP/EXIF/comment metadata.
        clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
        clean.save(os.path.join(IMAGES, out_name), "JPEG", quality=95)
        print(f"{src_name} -> images/{out_name} {clean.size[0]}x{clean.size[1]}")


def preprocess(path: str, cfg: dict) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        scale = 256 / min(w, h)
        im = im.resize((max(256, round(w * scale)), max(256, round(h * scale))), Image.BILINEAR)
        w, h = im.size
        left, top = (w - 224) // 2, (h - 224) // 2
        im = im.crop((left, top, left + 224, top + 224))
        x = np.asarray(im, dtype=np.float32)  # HWC, RGB, 0..255
    if cfg["pixel_range"] == 1:
        x = x / 255.0
    if cfg["channel_order"] == "BGR":
        x = x[..., ::-1]
    x = (x - np.asarray(cfg["mean"], np.float32)) / np.asarray(cfg["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def check() -> None:
    import onnxruntime as ort

    with open(os.path.join(HERE, "efficientnet_lite0.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(HERE, cfg["labels"])) as f:
        labels = f.read().splitlines()
    sess = ort.InferenceSession(os.path.join(HERE, "efficientnet_lite0.onnx"), providers=["CPUExecutionProvider"])
    names = sorted(os.listdir(IMAGES))
    batch = np.stack([preprocess(os.path.join(IMAGES, n), cfg) for n in names]).astype(np.float32)
    logits = sess.run([cfg["output"]], {"input": batch})[0]
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    print("| image | size | top-1 (index) | p | top-2 | top-3 |")
    print("|---|---|---|---|---|---|")
    for n, p in zip(names, probs):
        with Image.open(os.path.join(IMAGES, n)) as im:
            size = f"{im.size[0]}x{im.size[1]}"
        top = np.argsort(-p)[:3]
        cells = [f"{labels[i]} ({i})" for i in top]
        print(f"| {n} | {size} | {cells[0]} | {p[top[0]]:.3f} | {cells[1]} {p[top[1]]:.3f} | {cells[2]} {p[top[2]]:.3f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only run the ONNX check")
    args = parser.parse_args(argv)
    if not args.check:
        write_images()
    check()
    return 0


if __name__ == "__main__":
    sys.exit(main())
