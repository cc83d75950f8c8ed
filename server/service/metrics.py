"""Prometheus metrics of the service (prometheus-client), served by ``--metrics-listen`` on a port of
their own: audits by state, queue depth, frames, time in each stage, errors by status, and the
process's memory (prometheus-client's process collector)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, start_http_server

from shiftaudit.server.engine.progress import Progress

from .admission import Admission


class Metrics:
    def __init__(self, admission: Admission) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # process_resident_memory_bytes and the rest
        self.audits = Counter("shiftaudit_audits", "Audits by how they ended, and accepted ones", ["state"],
                              registry=registry)
        Gauge("shiftaudit_audits_running", "Audits running now", registry=registry).set_function(
            lambda: admission.running)
        Gauge("shiftaudit_audits_queued", "Audits admitted beyond the running slots: they wait for one",
              registry=registry).set_function(lambda: admission.waiting)
        self.frames = Counter("shiftaudit_frames", "Frames rendered and inferred", registry=registry)
        self.stage = Counter("shiftaudit_stage_seconds", "Time in each stage of the audits (render runs ahead, "
                             "in its own thread: stages overlap)", ["stage"], unit="seconds", registry=registry)
        self.errors = Counter("shiftaudit_errors", "Errors answered, by gRPC status", ["code"], registry=registry)

    def progressed(self, before: Progress | None, now: Progress) -> None:
        """An audit's progress event: what it did since the one ``before``."""
        self.frames.inc(now.frames - (before.frames if before else 0))
        for stage in ("render", "infer", "score"):
            seconds = getattr(now, f"{stage}_seconds") - (getattr(before, f"{stage}_seconds") if before else 0.0)
            self.stage.labels(stage).inc(max(0.0, seconds))

    def serve(self, listen: str) -> int:
        """The /metrics endpoint on ``listen`` (HOST:PORT, port 0 picks one); the port bound."""
        host, _, port = listen.rpartition(":")
        server, _ = start_http_server(int(port), host.strip("[]") or "127.0.0.1", registry=self.registry)
        return server.server_address[1]
