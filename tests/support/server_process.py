"""Start a real ``audit-server`` process on a free loopback port, for the service tests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# The audit-server the service tests start: this environment's, unless SHIFTAUDIT_TEST_SERVER names
# another build's (e.g. the code before a fix, to see its test fail there).
SERVER = os.environ.get("SHIFTAUDIT_TEST_SERVER") or str(Path(sys.executable).with_name("audit-server"))


class ServerProcess:
    def __init__(self, model_root: Path, state_dir: Path, *extra: str, preexec_fn=None) -> None:
        """``preexec_fn`` runs in the server's process before it starts (resource limits, for fault tests)."""
        self.preexec_fn = preexec_fn
        self.args = [SERVER, "--model-root", str(model_root),
                     "--state-dir", str(state_dir), "--listen", "127.0.0.1:0", "--grace", "2", *extra]
        self.proc: subprocess.Popen | None = None
        self.target = ""

    def start(self) -> ServerProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     preexec_fn=self.preexec_fn)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"audit-server did not start: {line}{self.proc.stderr.read()}")
        self.target = line.split("listening on ")[1].split()[0]
        self.banner = line
        self.stdout: list[str] = []
        self.stderr: list[str] = []  # read as it comes: a full pipe would block the server's writes
        self._readers = [threading.Thread(target=lambda s=s, into=into: into.extend(s), daemon=True)
                         for s, into in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()
        return self

    def log(self) -> list[dict]:
        """The server's log so far: one JSON object a line."""
        return [json.loads(line) for line in list(self.stderr)]

    def healthy(self, creds: grpc.ChannelCredentials | None = None, timeout: float = 5) -> int:
        channel = grpc.secure_channel(self.target, creds) if creds else grpc.insecure_channel(self.target)
        with channel:
            stub = health_pb2_grpc.HealthStub(channel)
            return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout).status

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            for reader in self._readers:
                reader.join(5)


def refused_start(model_root: Path, state_dir: Path, *extra: str) -> str:
    """audit-server's stderr when it refuses to start (exit 2, never listening)."""
    run = subprocess.run([SERVER, "--model-root", str(model_root), "--state-dir", str(state_dir), "--listen",
                          "127.0.0.1:0", *extra], capture_output=True, text=True, timeout=20)
    assert run.returncode == 2 and "listening on" not in run.stdout, (run.returncode, run.stdout, run.stderr)
    return run.stderr


def wait_for(predicate, timeout: float = 20, every: float = 0.05):
    """Poll until ``predicate()`` is truthy; its value, or AssertionError at the timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def ends_interrupted(run: Callable[[], dict]) -> None:
    """A background audit the test cancels (CancelAudit) while it runs: it ends with its partial report.
    (Such helpers used to expect an error; in a thread that expectation failed only as a warning.)"""
    report = run()
    assert report.get("interrupted"), "the audit ran to its end: the test's cancel did not reach it"
