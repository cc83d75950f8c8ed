"""One audit-server under many clients: what it admits, how fast its cheap calls stay, what it holds.

For each client count N (default 4, 16, 64), a fresh server on loopback over the example model and
photographs, with its default admission (one audit at a time, eight waiting). N clients, each on its own
channel, start one audit at once; meanwhile a probe calls Health.Check and ListModels back to back. Prints
per N: audits accepted and refused (RESOURCE_EXHAUSTED), p50/p99 of both calls while audits ran, the ratio
of Health's p99 under load to its p99 on the idle server (measured first, same run), the server's peak
resident memory (VmHWM) and the wall time. Bounded: N audits of ``--pairs-per-image`` pairs each, loopback
only, every call with a deadline.

    python bench/service_load.py [--clients 4 16 64] [--pairs-per-image 8]
"""
from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shiftaudit.client.remote import AuditClient, DataPath, RemoteError
from shiftaudit.server.engine.options import AuditOptions

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODEL = "efficientnet_lite0.onnx"
DEADLINE = 600  # seconds: no call of this benchmark waits longer


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def probe(target: str, stop: threading.Event, limit: int = 100_000) -> dict[str, list[float]]:
    """Latencies (ms) of Health.Check and ListModels, called in turn until ``stop`` (or ``limit`` calls)."""
    times: dict[str, list[float]] = {"health": [], "models": []}
    with AuditClient(target) as client, grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while not stop.is_set() and len(times["health"]) < limit:
            start = time.perf_counter()
            health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            times["health"].append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            client.models()
            times["models"].append((time.perf_counter() - start) * 1000)
    return times


def one_audit(target: str, options: AuditOptions) -> str:
    try:
        with AuditClient(target) as client:
            client.run(MODEL, options, images=DataPath("images"), timeout=DEADLINE)
        return "accepted"
    except RemoteError as e:
        if e.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return "refused"
        raise


def load(n: int, options: AuditOptions) -> dict:
    with tempfile.TemporaryDirectory() as state:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("audit-server")), "--model-root", str(EXAMPLES), "--data-root",
             str(EXAMPLES), "--state-dir", state, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            target = server.stdout.readline().split("listening on ")[1].split()[0]
            with AuditClient(target) as client:  # the model open, as on a node that served before
                client.load_model(MODEL)
            idle = probe(target, threading.Event(), limit=200)
            stop = threading.Event()
            with ThreadPoolExecutor(n + 1) as pool:
                probing = pool.submit(probe, target, stop)
                start = time.perf_counter()
                outcomes = list(pool.map(lambda _: one_audit(target, options), range(n)))
                wall = time.perf_counter() - start
                stop.set()
                busy = probing.result(timeout=60)
            peak = peak_rss_mib(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    p = lambda xs, q: float(np.percentile(xs, q))  # noqa: E731
    return {"n": n, "accepted": outcomes.count("accepted"), "refused": outcomes.count("refused"),
            "health": (p(busy["health"], 50), p(busy["health"], 99)), "calls": len(busy["health"]),
            "models": (p(busy["models"], 50), p(busy["models"], 99)),
            "idle_health_p99": p(idle["health"], 99), "peak_mib": peak, "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[4, 16, 64])
    ap.add_argument("--pairs-per-image", type=int, default=8)
    args = ap.parse_args()
    options = AuditOptions(pairs_per_image=args.pairs_per_image, protocols=("embed-black",))
    print(f"each client: one audit of {MODEL} on examples/images, {args.pairs_per_image} pairs per image, "
          "embed-black; server defaults (1 running, 8 waiting)")
    print(f"{'clients':>7} {'accepted':>8} {'refused':>7} {'health p50/p99 ms':>18} {'ListModels p50/p99 ms':>22} "
          f"{'p99 load/idle':>13} {'peak RSS MiB':>12} {'wall s':>7}")
    for n in args.clients:
        r = load(n, options)
        print(f"{r['n']:>7} {r['accepted']:>8} {r['refused']:>7} {r['health'][0]:>8.1f} / {r['health'][1]:<7.1f} "
              f"{r['models'][0]:>10.1f} / {r['models'][1]:<9.1f} {r['health'][1] / r['idle_health_p99']:>13.1f} "
              f"{r['peak_mib']:>12.0f} {r['wall']:>7.1f}")
    print("command: python " + shlex.join(sys.argv))


if __name__ == "__main__":
    main()
