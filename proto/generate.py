"""Regenerate the Python modules of the API from the .proto files (run after editing them).

    python proto/generate.py            # writes next to the .proto files (committed)
    python proto/generate.py --out DIR  # writes elsewhere (the drift test compares the two)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
PROTOS = sorted(str(p.relative_to(HERE)) for p in HERE.rglob("*.proto"))


def generate(out: Path) -> None:
    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    args = ["protoc", f"-I{HERE}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}",
            f"--grpc_python_out={out}", *PROTOS]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE)
    generate(ap.parse_args().out)
