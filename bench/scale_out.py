"""Audit throughput on a local Ray cluster with 1, 2 and 4 workers, against the in-process audit.

On this machine's cores, in one run: the in-process audit (`shiftaudit.client.api.audit`, ONNX Runtime on
every core), then `audit_on_ray` on a local cluster of all the cores with 1, 2 and 4 CPU actors, the cores
split between them (each actor's ONNX Runtime threads: its whole CPUs, at least one). Each line prints the
frames per second and the ratio to the in-process audit; the reports are checked equal to the
in-process one (tallies), so every number is of the same work. Times include starting the actors
(loading the model in each), not starting the cluster.

Why: on one node Ray only adds work (its actors, the object store, reading through Ray Data); the ratio
says what a node pays for an audit that can also span nodes and survive losing one. Across nodes the
throughput adds up: shards of images never talk to each other.

    python bench/scale_out.py [--copies 8] [--workers 1 2 4]
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import ray

from shiftaudit.client.api import audit, audit_on_ray
from shiftaudit.server.engine.runners import EngineOptions
from shiftaudit.server.engine.scale_out import RayOptions

CPU = EngineOptions(device="cpu")

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "efficientnet_lite0.onnx"
IMAGES = ROOT / "examples" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=8, help="copies of the example photographs audited (6 each)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.copies):
            shutil.copytree(IMAGES, Path(tmp) / f"set{i}")
        start = time.perf_counter()
        alone = audit(MODEL, tmp, engine_options=CPU)
        base = alone["frames"] / (time.perf_counter() - start)
        print(f"$ {shlex.join([sys.executable, *sys.argv])}")
        print(f"{len(alone['images'])} images, {alone['frames']} frames, {cores} cores")
        print(f"in process          {base:7.1f} frames/s   1.00")
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        try:
            for n in args.workers:
                start = time.perf_counter()
                report = audit_on_ray(MODEL, tmp, ray=RayOptions(workers=n, cpus_per_worker=cores / n))
                rate = report["frames"] / (time.perf_counter() - start)
                assert report["tallies"] == alone["tallies"], "the Ray audit differs from the in-process one"
                print(f"ray, {n} worker{'s' if n > 1 else ' '}      {rate:7.1f} frames/s   {rate / base:.2f}")
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
