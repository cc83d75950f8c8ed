"""Our CUDA kernels (``*.cu`` beside this file) and how they are built.

Each source compiles two ways: with NVRTC to a cubin for the device's own architecture (cached on
disk by source hash, architecture and NVRTC version; ``--fmad=false`` so float arithmetic matches the
CPU renderer), and as plain host C++ through ``compat.h`` (a launch is one thread running the
grid-stride loop), so the same source is checked against NumPy on a machine without a GPU.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
KERNELS = ("render", "inpaint", "score")
NVRTC_OPTIONS = ("--fmad=false", "--std=c++17", "-default-device")


class KernelBuildError(RuntimeError):
    """A kernel did not compile; the message holds the compiler's log."""


def source(name: str) -> str:
    return (HERE / f"{name}.cu").read_text()


def _digest(name: str, *extra: str) -> str:
    h = hashlib.sha256()
    for part in (source(name), (HERE / "compat.h").read_text(), *extra):
        h.update(part.encode())
    return h.hexdigest()[:16]


def cache_dir(name: str = "kernels") -> Path:
    """Our cache directory ``name`` (compiled kernels; ONNX Runtime's TensorRT engines), made if missing."""
    d = Path(os.environ.get("SHIFTAUDIT_CACHE", Path.home() / ".cache" / "shiftaudit")) / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def nvrtc_version() -> str:
    from cuda.bindings import nvrtc

    _, major, minor = nvrtc.nvrtcVersion()
    return f"{major}.{minor}"


def _check(result, prog=None) -> None:
    from cuda.bindings import nvrtc

    err = result[0]
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        log = ""
        if prog is not None:
            _, size = nvrtc.nvrtcGetProgramLogSize(prog)
            buf = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, buf)
            log = buf.decode(errors="replace").strip()
        raise KernelBuildError(f"NVRTC: {err.name}: {log}")


def cubin(name: str, arch: str) -> bytes:
    """The kernel ``name`` compiled by NVRTC for ``arch`` (e.g. ``sm_90``), from the disk cache when
    the same source, architecture and NVRTC version were compiled before."""
    from cuda.bindings import nvrtc

    path = cache_dir() / f"{name}-{_digest(name)}-{arch}-nvrtc{nvrtc_version()}.cubin"
    if path.exists():
        return path.read_bytes()
    header = (HERE / "compat.h").read_bytes()
    err, prog = nvrtc.nvrtcCreateProgram(source(name).encode(), f"{name}.cu".encode(), 1, [header], [b"compat.h"])
    _check((err,))
    try:
        opts = [f"--gpu-architecture={arch}".encode(), *(o.encode() for o in NVRTC_OPTIONS)]
        _check(nvrtc.nvrtcCompileProgram(prog, len(opts), opts), prog)
        _, size = nvrtc.nvrtcGetCUBINSize(prog)
        data = b" " * size
        _check(nvrtc.nvrtcGetCUBIN(prog, data))
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    _write_atomically(path, data)
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    """Concurrent processes and threads never read half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@lru_cache(maxsize=None)
def host_library(name: str) -> ctypes.CDLL:
    """The kernel ``name`` built as host C++ (no FMA contraction, like --fmad=false)."""
    cxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if cxx is None:
        raise KernelBuildError("no C++ compiler (c++ or g++) to build the kernels for the host")
    path = cache_dir() / f"{name}-{_digest(name, 'host')}.so"
    if not path.exists():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / path.name
            cmd = [cxx, "-O2", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC",
                   "-x", "c++", f"-I{HERE}", str(HERE / f"{name}.cu"), "-o", str(out)]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode:
                raise KernelBuildError(f"host build of {name}.cu failed: {run.stderr.strip()}")
            _write_atomically(path, out.read_bytes())
    return ctypes.CDLL(str(path))
