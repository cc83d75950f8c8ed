"""Decoding: files or encoded bytes -> RGB uint8 sources, each identified by its content hash.

The hash is the image's identity for the random placement draws, so a split of the work over
batches, shards or servers reproduces the same frames. Decoding is bounded: OpenCV refuses images
over ``MAX_PIXELS`` (a small file can declare a huge size), and files over ``MAX_BYTES`` are not read.
"""
from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_PIXELS = 2**27  # 134 MP; must be set before OpenCV decodes anything
MAX_BYTES = 256 * 2**20
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))

import cv2  # noqa: E402  (after the limit above)
import numpy as np  # noqa: E402

from .budget import ROWS, ImageMemory  # noqa: E402
from .errors import InputError  # noqa: E402
from .files import Shard, file_sha256, image_files, inside  # noqa: E402

_ALPHA_FORMATS = (b"\x89PNG", b"RIFF", b"II*\x00", b"MM\x00*")  # PNG, WebP, TIFF may carry alpha
# what OpenCV decodes and no header reader here knows (OpenEXR, Radiance HDR, PFM, Sun raster, JPEG 2000;
# AVIF and HEIF say "ftyp" at byte 4): a server cannot size them before decoding
_OPENCV_ONLY = (b"v/1\x01", b"#?RADIANCE", b"#?RGBE", b"PF", b"Pf", b"\x59\xa6\x6a\x95", b"\x00\x00\x00\x0cjP  ",
                b"\xff\x4f\xff\x51")


class ImageError(InputError):
    """An input that is not a usable image; the message names the problem."""


@dataclass(frozen=True)
class SourceImage:
    name: str
    digest: str  # sha256 of the encoded bytes
    pixels: np.ndarray  # (H, W, 3) uint8 RGB

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.pixels.shape[1], self.pixels.shape[0]


def decode(data: bytes, name: str, memory: ImageMemory | None = None) -> SourceImage:
    """Any OpenCV-readable image: grayscale is replicated, alpha composited on black (the colour of
    the embedding canvas), 16-bit and float reduced to 8 bits. JPEG EXIF orientation is applied. With
    ``memory`` (a server's budget), an image that would need more than it leaves one image, or whose
    size its header does not tell, is refused before it is decoded."""
    if not data:
        raise ImageError(f"{name}: empty file")
    declared = declared_size(data)
    if declared and declared[0] * declared[1] > MAX_PIXELS:
        raise ImageError(f"{name}: declares {declared[0]}x{declared[1]} pixels, over the limit of "
                         f"{MAX_PIXELS} (decompression bomb?)")
    if memory:
        layout = decoded_layout(data)
        if layout is None and not data.startswith(_OPENCV_ONLY) and data[4:8] != b"ftyp":
            raise ImageError(f"{name}: not an image OpenCV can decode")
        if layout is None:
            raise ImageError(f"{name}: its size cannot be read before it is decoded, so this server's memory "
                             "budget cannot be kept; send PNG, JPEG, TIFF, WebP or BMP")
        if why := memory.refuses(name, *layout, len(data)):
            raise ImageError(why)
    buf = np.frombuffer(data, np.uint8)
    flags = cv2.IMREAD_UNCHANGED if data.startswith(_ALPHA_FORMATS) else cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH
    try:
        img = cv2.imdecode(buf, flags)
    except cv2.error as e:
        raise ImageError(f"{name}: cannot decode ({str(e).strip().splitlines()[-1]})") from None
    if img is None or img.size == 0:
        raise ImageError(f"{name}: not an image OpenCV can decode")
    return SourceImage(name, hashlib.sha256(data).hexdigest(), _to_rgb8(img, name))


def _to_rgb8(img: np.ndarray, name: str) -> np.ndarray:
    """The decoded image as (H, W, 3) uint8 RGB, converted ROWS rows at a time straight into the result:
    a 16-bit RGBA image converted whole would hold several full-size 32-bit temporaries (GBs from a 1 MB
    PNG). Grayscale is replicated; alpha composited on black."""
    channels = 1 if img.ndim == 2 else img.shape[2]
    if channels not in (1, 3, 4):
        raise ImageError(f"{name}: unsupported channel count {channels}")
    out = np.empty((*img.shape[:2], 3), np.uint8)
    for r in range(0, img.shape[0], ROWS):
        block = _to_uint8(img[r:r + ROWS], name)
        if channels == 1:
            out[r:r + ROWS] = block[..., None]
        elif channels == 4:
            alpha = block[..., 3:].astype(np.float32) / 255
            out[r:r + ROWS] = np.round(block[..., 2::-1] * alpha).astype(np.uint8)
        else:  # OpenCV's swap is ~50x faster than NumPy's reversed-stride copy
            cv2.cvtColor(block, cv2.COLOR_BGR2RGB, dst=out[r:r + ROWS])
    return out


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, read before anything is decoded; None otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(b"\xff\xd8"):
        frame = _jpeg_frame(data)
        return frame[:2] if frame else None
    return None


def decoded_layout(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, bytes a pixel) of the array OpenCV will decode, from the header alone (the most
    channels and depth the header allows); None when no header tells. PNG and JPEG are read here (their
    depth matters: 16-bit RGBA is 8 bytes a pixel), other formats by Pillow, which opens lazily."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 26:
        (w, h), depth, colour = declared_size(data), data[24], data[25]
        return w, h, {0: 1, 2: 3}.get(colour, 4) * (2 if depth == 16 else 1)
    if data.startswith(b"\xff\xd8"):
        frame = _jpeg_frame(data)
        return None if frame is None else (frame[0], frame[1], frame[3] * (2 if frame[2] > 8 else 1))
    return _pillow_layout(data)


def _jpeg_frame(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, bits a sample, components) from a JPEG's start-of-frame segment."""
    i = 2
    while i + 10 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return (int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big"), data[i + 4],
                    data[i + 9])
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return None


def _pillow_layout(data: bytes) -> tuple[int, int, int] | None:
    """Width, height and bytes a pixel of what Pillow can identify (TIFF's samples and bits from its tags)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if im.format == "TIFF":
                tags = im.tag_v2
                bits = tags.get(258, (8,))
                bits = max(bits) if isinstance(bits, tuple) else bits
                return w, h, max(1, int(tags.get(277, 1))) * -(-int(bits) // 8)
            return w, h, len(im.getbands()) * _BAND_BYTES.get(im.mode, 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


_BAND_BYTES = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}


def _to_uint8(img: np.ndarray, name: str) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if img.dtype in (np.float32, np.float64):  # HDR/EXR-like: clip 0..1
        return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    raise ImageError(f"{name}: unsupported pixel type {img.dtype}")


def read(path: Path, name: str | None = None, memory: ImageMemory | None = None) -> SourceImage:
    name = name or str(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ImageError(f"{name}: file larger than {MAX_BYTES // 2**20} MiB")
        data = path.read_bytes()
    except OSError as e:
        raise ImageError(f"{name}: {e.strerror}") from None
    return decode(data, name, memory)


# name, and how to decode it when its turn comes (within what a memory budget leaves one image)
ImageSource = tuple[str, Callable[..., SourceImage]]


def image_sources(path: Path, confine: Path | None = None, shard: Shard | None = None,
                  by_content: bool = False) -> list[ImageSource]:
    """Every image below the directory ``path`` (or the file itself), named as `files.image_files` names
    it, decoded when its turn comes; with ``shard``, only that shard's; ``by_content``: in the order of
    their content's sha256 (an audit that stops early then takes the same images whatever their names).
    With ``confine``, a file whose real path (symlinks resolved) lies outside that root is not read: it
    is skipped with the reason, like an unreadable image."""
    root = confine.resolve() if confine else None

    def load(file: Path, name: str, memory: ImageMemory | None = None) -> SourceImage:
        if root is not None and not inside(root, file):
            raise ImageError(f"{name}: leads outside the data root")
        return read(file, name, memory)

    files = image_files(path)
    if shard or by_content:
        digests = {file: file_sha256(file) for _, file in files}
        files = [(name, file) for name, file in files if not shard or shard.holds(digests[file])]
        if by_content:
            files.sort(key=lambda f: digests[f[1]])
    return [(name, lambda memory=None, file=file, name=name: load(file, name, memory)) for name, file in files]
