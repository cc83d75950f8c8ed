"""The whole process, as a user runs it: ``audit-client`` against the naive peer (`peer_naive.py`, run as a
script), each a fresh process on the same work (model, images, protocol, pairs, batch: the same frames),
timed from its start to its exit, imports, model loading and report included.

For each protocol the peer can do (crop, embed-black, scale, null), ``--reps`` paired runs alternate which
of the two goes first (so drift on a shared machine hits both alike); the medians are compared:
**speedup** = peer seconds / audit seconds (above 1: shiftaudit is faster). Both must run the same frames
(their placements are the planner's); the pairs whose top-1 changed are printed beside (the peer's frames
are OpenCV's uint8 resizes, ours float: a pair on the edge of its decision may go either way). Also timed: ``audit-client
--help`` (start-up alone, goal under 0.25 s).

    python bench/whole_process.py [--reps 5] [--pairs-per-image 16] [--protocol embed-black ...]
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "efficientnet_lite0.onnx"
IMAGES = ROOT / "examples" / "images"
PROTOCOLS = ("crop", "embed-black", "scale", "null")  # peer_naive.PROTOCOLS (not imported: it loads the engine)
GOALS = {"embed-black": 1.15, "scale": 1.15}  # speedup over the peer (issue 30)
CLIENT = Path(sys.executable).with_name("audit-client")


def timed(argv: list[str]) -> tuple[float, str]:
    """(seconds from start to exit, standard output) of one process."""
    start = time.perf_counter()
    run = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode not in (0, 1):  # 1: a gate failed, which is a finished audit
        raise SystemExit(f"{shlex.join(argv)} exited {run.returncode}: {run.stderr.strip()}")
    return seconds, run.stdout


def audit_counts(report: Path, protocol: str) -> tuple[int, int]:
    """(frames, pairs whose top-1 changed) of the audit's report."""
    doc = json.loads(report.read_text())
    p = doc["protocols"][protocol]
    return doc["frames"], round(p["p_top1_change"]["value"] * p["pairs"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="paired runs per protocol (default 5)")
    ap.add_argument("--pairs-per-image", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--protocol", action="append", choices=PROTOCOLS, help=f"repeatable (default: {' '.join(PROTOCOLS)})")
    args = ap.parse_args(argv)
    common = ["--engine", str(MODEL), "--images", str(IMAGES), "--pairs-per-image", str(args.pairs_per_image),
              "--batch", str(args.batch)]
    helps = sorted(timed([str(CLIENT), "--help"])[0] for _ in range(args.reps))
    print(f"audit-client --help: median {statistics.median(helps):.3f} s (goal < 0.25 s)")
    print(f"{'protocol':<12} {'audit s':>8} {'peer s':>8} {'speedup':>8} {'goal':>5}  (medians of {args.reps} paired "
          "runs; ! a goal not met)")
    totals = [0.0, 0.0]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        for protocol in args.protocol or PROTOCOLS:
            audit = [str(CLIENT), *common, "--protocol", protocol, "--no-progress", "--json", str(report)]
            peer = [sys.executable, str(ROOT / "bench" / "peer_naive.py"), *common, "--protocol", protocol]
            ours, theirs = [], []
            for rep in range(args.reps):
                for which in ((audit, peer) if rep % 2 == 0 else (peer, audit)):
                    seconds, out = timed(which)
                    if which is audit:
                        ours.append(seconds)
                        frames, changed = audit_counts(report, protocol)
                    else:
                        theirs.append(seconds)
                        found = re.search(r"(\d+) frames, (\d+) of \d+ pairs changed", out)
                        peer_frames, peer_changed = int(found.group(1)), int(found.group(2))
                if frames != peer_frames:
                    raise SystemExit(f"{protocol}: the audit ran {frames} frames, the peer {peer_frames}: not the same "
                                     "work")
            a, p = statistics.median(ours), statistics.median(theirs)
            totals[0] += a
            totals[1] += p
            goal = f"{GOALS[protocol]:.2f}{' ' if p / a >= GOALS[protocol] else '!'}" if protocol in GOALS else "-"
            print(f"{protocol:<12} {a:>8.2f} {p:>8.2f} {p / a:>8.2f} {goal:>5}  ({frames} frames; top-1 changed in "
                  f"{changed} pairs, the peer's {peer_changed})", flush=True)
    print(f"{'all':<12} {totals[0]:>8.2f} {totals[1]:>8.2f} {totals[1] / totals[0]:>8.2f}")
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]),
          f"({len(list(IMAGES.iterdir()))} images, pairs/image {args.pairs_per_image}, batch {args.batch})")


if __name__ == "__main__":
    main()
