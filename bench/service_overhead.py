"""What the service costs: the same audit in process and through audit-server on loopback.

Prints, from one run on the example model and photographs:
- frames/s in process (the engine's ``Job.run`` with the model already open, as the server has it),
  through the server with images named under its
  data root, and with the images uploaded first; the ratios remote / in-process (goal >= 0.95);
- the server's resident memory (VmRSS) after a warm-up audit and after every 10 of ``--sequential``
  more small audits (default 50): steady growth would be a leak, a step that levels off is the
  allocator's arenas filling.

    python bench/service_overhead.py [--pairs-per-image 8] [--repeat 5] [--sequential 50]
"""
from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shiftaudit.client.remote import AuditClient, DataPath
from shiftaudit.server.engine.images import image_sources
from shiftaudit.server.engine.job import Job
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.runners import open_runner

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PROTOCOLS = ("crop", "embed-black", "scale")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def best(fn, reps: int) -> tuple[float, dict]:
    """(seconds, report) of the fastest of ``reps`` calls."""
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        report = fn()
        runs.append((time.perf_counter() - start, report))
    return min(runs, key=lambda r: r[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs-per-image", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5, help="timed repetitions, best kept")
    ap.add_argument("--sequential", type=int, default=50)
    args = ap.parse_args()
    options = AuditOptions(pairs_per_image=args.pairs_per_image, protocols=PROTOCOLS)
    small = AuditOptions(protocols=("embed-black",))

    with tempfile.TemporaryDirectory() as state:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("audit-server")), "--model-root", str(EXAMPLES), "--data-root",
             str(EXAMPLES), "--state-dir", state, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
        try:
            target = server.stdout.readline().split("listening on ")[1].split()[0]
            model = EXAMPLES / "efficientnet_lite0.onnx"
            with AuditClient(target) as client, open_runner(model) as runner:
                client.run("efficientnet_lite0.onnx", small, images=DataPath("images"))  # load the model, warm up
                job = Job.prepare(model, runner, options, image_sources(EXAMPLES / "images"))
                local_s, local = best(job.run, args.repeat)
                path_s, remote = best(lambda: client.run("efficientnet_lite0.onnx", options, images=DataPath("images")),
                                      args.repeat)
                upload_s, _ = best(lambda: client.run("efficientnet_lite0.onnx", options, images=EXAMPLES / "images"),
                                   args.repeat)
                assert remote["protocols"] == local["protocols"], "remote metrics differ from in-process"
                frames = local["frames"]
                rss = [rss_mib(server.pid)]
                for i in range(args.sequential):
                    client.run("efficientnet_lite0.onnx", small, images=DataPath("images"))
                    if (i + 1) % 10 == 0:
                        rss.append(rss_mib(server.pid))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)

    print(f"audit of {frames} frames ({', '.join(PROTOCOLS)}), best of {args.repeat}:")
    print(f"  in process            {frames / local_s:7.1f} frames/s")
    print(f"  server, data path     {frames / path_s:7.1f} frames/s   ratio {local_s / path_s:.3f}")
    print(f"  server, upload first  {frames / upload_s:7.1f} frames/s   ratio {local_s / upload_s:.3f}")
    print(f"server RSS after warm-up and every 10 audits (MiB): {' '.join(f'{m:.0f}' for m in rss)}; "
          f"{rss[-1] - rss[0]:+.1f} MiB after {args.sequential} audits")
    print("command: python " + shlex.join(sys.argv))


if __name__ == "__main__":
    main()
