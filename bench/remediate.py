"""What ``audit-client remediate`` costs, as a user runs it, against a plain audit of the same model on the
same images; and what each remedy costs the engine.

Two processes timed by the clock, in one run: ``audit-client --engine MODEL --images DIR`` and
``audit-client remediate --engine MODEL --images DIR`` (the default remedies: blur, input-blur,
shift-average 2x2), both with the default options. The first ratio is remediate's wall time over the
audit's: it audits the original and three variants on the very frames (each batch rendered once) and
times the bare engines. Then, from its JSON, each variant's bare-engine throughput over the original's,
measured in that same process (docs/remediate.md, "cost").

    python bench/remediate.py [--model M] [--images DIR] [--pairs-per-image K]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENT = str(Path(sys.executable).with_name("audit-client"))


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([CLIENT, *args, "--no-progress"], check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "examples" / "efficientnet_lite0.onnx")
    ap.add_argument("--images", type=Path, default=ROOT / "examples" / "images")
    ap.add_argument("--pairs-per-image", default="1")
    a = ap.parse_args()
    common = ["--engine", str(a.model), "--images", str(a.images), "--pairs-per-image", a.pairs_per_image]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        audit = timed(common)
        remediate = timed(["remediate", *common, "--json", str(out)])
        doc = json.loads(out.read_text())
    print(f"audit {audit:.1f} s, remediate {remediate:.1f} s: ratio {remediate / audit:.2f} "
          f"(the original and {len(doc['variants'])} variants on {doc['images']} images)")
    print(f"original: {doc['original']['frames_per_second']:.1f} frames/s of bare engine calls")
    for v in doc["variants"]:
        print(f"{v['name']}: {v['cost']['frames_per_second']:.1f} frames/s, ratio {v['cost']['throughput_ratio']:.2f}")


if __name__ == "__main__":
    main()
