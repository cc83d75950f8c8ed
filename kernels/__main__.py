"""``python -m shiftaudit.kernels --check [--arch sm_80 --arch sm_90] [--device]`` or ``--build-host``

Compiles every kernel with NVRTC to a cubin for each architecture, builds it as host C++ and runs it
against the NumPy reference; with ``--device`` the same checks run on the GPU. One line per kernel;
exit status 1 if anything failed. Needs no GPU unless ``--device`` is given.

``--build-host`` compiles the host build (the CPU renderer) beside the sources, where every user of this
installation finds it: a container image's build stage runs it, so the image needs no compiler.
"""
from __future__ import annotations

import argparse
import sys

from . import KERNELS, KernelBuildError, build_host, cubin, host_library, nvrtc_version


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shiftaudit.kernels", description=__doc__.split("\n\n")[1])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--check", action="store_true")
    what.add_argument("--build-host", action="store_true", help="compile the CPU renderer beside the sources")
    ap.add_argument("--arch", action="append", help="cubin target (default sm_80 and sm_90)")
    ap.add_argument("--device", action="store_true", help="also run the checks on the GPU")
    args = ap.parse_args(argv)
    if args.build_host:
        return build_shipped(ap.prog)
    return check(ap.prog, args.arch or ["sm_80", "sm_90"], args.device)


def build_shipped(prog: str) -> int:
    """Every kernel's host build beside the sources (`SHIPPED`); one line each."""
    for name in KERNELS:
        try:
            print(f"{name}: {build_host(name)}")
        except (KernelBuildError, OSError) as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 1
    return 0


def check(prog: str, archs: list[str], device: bool) -> int:
    """Every kernel compiled by NVRTC for ``archs`` and checked on the host (and the GPU with ``device``)."""
    from .check import check_half, check_render, check_score

    checks = {"render": (check_render, check_half), "inpaint": (), "score": (check_score,)}  # inpaint: in render
    try:
        nvrtc_version()
    except ImportError as e:  # the gpu extra is what brings NVRTC; a GPU is needed only with --device
        print(f"{prog}: error: the checks compile with NVRTC, which is not installed ({e}): "
              "pip install 'shiftaudit[gpu]' (no GPU needed)", file=sys.stderr)
        return 2
    from .memory import DeviceMemory, HostMemory

    memories = [("host", HostMemory())] + ([("device", DeviceMemory())] if device else [])
    failed = False
    for name in KERNELS:
        parts = []
        try:
            parts.append(", ".join(f"{a} {len(cubin(name, a)) // 1024} KiB" for a in archs) + f" (NVRTC {nvrtc_version()})")
            host_library(name)
            for where, memory in memories:
                parts += [f"{where}: {run(memory)}" for run in checks[name]]
            if name == "inpaint":
                parts.append("checked with render (its inpainted frames)")
            print(f"{name}: ok: " + "; ".join(parts))
        except Exception as e:  # report every kernel, then fail
            failed = True
            print(f"{name}: FAILED: {'; '.join(parts + [str(e)])}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
