"""Our CUDA kernels (``*.cu`` beside this file) and how they are built.

Each source compiles two ways: with NVRTC to a cubin for the device's own architecture (cached on
disk by source hash, architecture and NVRTC version; ``--fmad=false`` so float arithmetic matches the
CPU renderer), and as plain host C++ through ``compat.h`` (a launch is one thread running the
grid-stride loop): the CPU renderer (`renderer.HostRenderer`), checked against NumPy and the GPU. The host
build is made once per machine on first use, or shipped prebuilt (an image's build stage runs
``python -m shiftaudit.kernels --build-host``).
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
    """Concurrent processes and threads never read half a file. Readable by all (mkstemp's files are the
    owner's alone): a build shipped in an image is made by root and loaded by the server's user."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


HOST_FLAGS = ("-O3", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC")  # no FMA: exact
SHIPPED = HERE / "host"  # builds made by ``python -m shiftaudit.kernels --build-host`` (the container's image)


def host_file(name: str) -> str:
    """The file name of the kernel ``name``'s host build: its source, the header and the flags hashed, so an
    edited kernel never loads a stale build."""
    return f"{name}-{_digest(name, 'host', *HOST_FLAGS)}.so"


def build_host(name: str, into: Path | None = None) -> Path:
    """Compile the kernel ``name`` as host C++ into the directory ``into`` (default `SHIPPED`), atomically:
    processes that build at once each write whole files. Raises KernelBuildError without a compiler or on
    the compiler's error."""
    into = into or SHIPPED
    cxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if cxx is None:
        raise KernelBuildError("no C++ compiler (c++ or g++) to build the kernels for the host")
    path = into / host_file(name)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        cmd = [cxx, *HOST_FLAGS, "-x", "c++", f"-I{HERE}", str(HERE / f"{name}.cu"), "-o", str(out)]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode:
            raise KernelBuildError(f"host build of {name}.cu failed: {run.stderr.strip()}")
        into.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, out.read_bytes())
    return path


@lru_cache(maxsize=None)
def host_library(name: str) -> ctypes.CDLL:
    """The kernel ``name``'s host build: the one shipped beside the sources (an image's), else the one in
    our cache, else compiled into the cache now (once per machine and source: about a second a kernel)."""
    shipped = SHIPPED / host_file(name)
    if shipped.exists():  # looked at first: the cache (made on first use) may not be writable where it is
        return ctypes.CDLL(str(shipped))
    cached = cache_dir() / host_file(name)
    return ctypes.CDLL(str(cached if cached.exists() else build_host(name, cache_dir())))
