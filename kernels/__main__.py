"""``python -m shiftaudit.kernels --check [--arch sm_80 --arch sm_90] [--device]``

Compiles every kernel with NVRTC to a cubin for each architecture, builds it as host C++ and runs it
against the NumPy reference; with ``--device`` the same checks run on the GPU. One line per kernel;
exit status 1 if anything failed. Needs no GPU unless ``--device`` is given.
"""
from __future__ import annotations

import argparse
import sys

from . import KERNELS, cubin, host_library, nvrtc_version
from .check import check_half, check_render, check_score

CHECKS = {"render": (check_render, check_half), "inpaint": (), "score": (check_score,)}  # inpaint: in render


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shiftaudit.kernels", description=__doc__.split("\n\n")[1])
    ap.add_argument("--check", action="store_true", required=True)
    ap.add_argument("--arch", action="append", help="cubin target (default sm_80 and sm_90)")
    ap.add_argument("--device", action="store_true", help="also run the checks on the GPU")
    args = ap.parse_args(argv)
    try:
        nvrtc_version()
    except ImportError as e:  # the gpu extra is what brings NVRTC; a GPU is needed only with --device
        print(f"{ap.prog}: error: the checks compile with NVRTC, which is not installed ({e}): "
              "pip install 'shiftaudit[gpu]' (no GPU needed)", file=sys.stderr)
        return 2
    archs = args.arch or ["sm_80", "sm_90"]
    from .memory import DeviceMemory, HostMemory

    memories = [("host", HostMemory())] + ([("device", DeviceMemory())] if args.device else [])
    failed = False
    for name in KERNELS:
        parts = []
        try:
            parts.append(", ".join(f"{a} {len(cubin(name, a)) // 1024} KiB" for a in archs) + f" (NVRTC {nvrtc_version()})")
            host_library(name)
            for where, memory in memories:
                parts += [f"{where}: {check(memory)}" for check in CHECKS[name]]
            if name == "inpaint":
                parts.append("checked with render (its inpainted frames)")
            print(f"{name}: ok: " + "; ".join(parts))
        except Exception as e:  # report every kernel, then fail
            failed = True
            print(f"{name}: FAILED: {'; '.join(parts + [str(e)])}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
