"""The CPU image, built from the project's Dockerfile by ``.ci/container``, run as an operator runs it:
its gRPC port published on the host's loopback, a model root and a data root mounted read-only, a state
directory mounted from the host. From the host: the health service answers SERVING and the image's own
HEALTHCHECK passes; the server is not root; an audit through the container equals the in-process audit
of the same image's tools, both rendered by the compiled kernels the image ships (and no compiler); SIGTERM during an audit lets it finish, ends the server with 0, and the report
is still there for the next container on that state directory. Its log is one JSON object a line.

These need podman and an image (``SHIFTAUDIT_IMAGE``); without them they skip. ``.ci/container`` has both."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shiftaudit.client import AuditOptions
from shiftaudit.client.remote import AuditClient, DataPath
from shiftaudit.v1 import audit_service_pb2 as pb
from tests.support import EXAMPLE_IMAGES, EXAMPLE_MODEL, QUICK

IMAGE = os.environ.get("SHIFTAUDIT_IMAGE", "")
PODMAN = shutil.which("podman")
USER = 10001  # the Dockerfile's numeric USER, which owns the state directory
pytestmark = pytest.mark.skipif(not (IMAGE and PODMAN), reason="no image to run: .ci/container builds one")


def podman(*args: str, timeout: float = 120) -> str:
    run = subprocess.run([PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert run.returncode == 0, f"podman {' '.join(args)}: {run.stderr.strip()}"
    return run.stdout.strip()


class Node:
    """One audit-server container. Flags after the image are appended to the image's own."""

    def __init__(self, volumes: dict[Path, str], *flags: str) -> None:
        self.name = f"shiftaudit-test-{uuid.uuid4().hex[:8]}"
        self.volumes = [a for host, inside in volumes.items() for a in ("-v", f"{host}:{inside}")]
        self.flags = flags
        self.target = ""

    def start(self) -> Node:
        podman("run", "-d", "--name", self.name, "-p", "127.0.0.1::50051", *self.volumes, IMAGE, *self.flags)
        self.target = podman("port", self.name, "50051/tcp").splitlines()[0]
        end = time.monotonic() + 60
        while self.health() != health_pb2.HealthCheckResponse.SERVING:
            assert time.monotonic() < end, f"not SERVING in 60 s: {self.logs()}"
            time.sleep(0.2)
        return self

    def health(self) -> int | None:
        try:
            with grpc.insecure_channel(self.target) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                return stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
        except grpc.RpcError:
            return None

    def uid(self) -> int:
        """The real uid of the container's main process, read from the host's /proc."""
        pid = podman("inspect", "--format", "{{.State.Pid}}", self.name)
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))

    def terminate(self) -> int:
        """SIGTERM, as `docker stop` and Kubernetes send it; the exit status."""
        podman("kill", "--signal", "TERM", self.name)
        return int(podman("wait", self.name, timeout=120))

    def logs(self) -> str:
        run = subprocess.run([PODMAN, "logs", self.name], capture_output=True, text=True, timeout=30, check=False)
        return run.stdout + run.stderr

    def log(self) -> list[dict]:
        """The server's log (stderr): every line must parse as one JSON object."""
        run = subprocess.run([PODMAN, "logs", self.name], capture_output=True, text=True, timeout=30, check=True)
        return [json.loads(line) for line in run.stderr.splitlines()]

    def remove(self) -> None:
        subprocess.run([PODMAN, "rm", "-f", self.name], capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def mounts(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("container")
    models, data = base / "models", base / "data"
    models.mkdir()
    shutil.copy(EXAMPLE_MODEL, models / "lite0.onnx")
    shutil.copy(EXAMPLE_MODEL.with_suffix(".json"), models / "lite0.json")
    shutil.copy(EXAMPLE_MODEL.parent / "imagenet_classes.txt", models)  # the sidecar names it
    shutil.copytree(EXAMPLE_IMAGES, data / "photos")
    for d in (base, models, data, data / "photos"):
        d.chmod(0o755)  # the container's user is not the owner
    return {"models": models, "data": data, "base": base}


def _state(mounts: dict[str, Path], name: str) -> Path:
    state = mounts["base"] / name
    state.mkdir()
    os.chown(state, USER, USER)  # a state directory the image's user owns, as docs/deploy.md says
    return state


def _volumes(mounts: dict[str, Path], state: Path) -> dict[Path, str]:
    return {mounts["models"]: "/models:ro", mounts["data"]: "/data:ro", state: "/var/lib/shiftaudit"}


@pytest.fixture(scope="module")
def node(mounts):
    node = Node(_volumes(mounts, _state(mounts, "state")), "--data-root", "/data").start()
    yield node
    node.remove()


def test_the_image_keeps_its_healthcheck_user_and_version():
    image = json.loads(podman("image", "inspect", IMAGE))[0]
    assert image["Config"]["User"] == f"{USER}:{USER}"
    assert "docker" in image["ManifestType"]  # OCI images have no HEALTHCHECK: built in docker format, it stays
    assert image["Healthcheck"]["Test"] == ["CMD", "python", "-m", "shiftaudit.server.probe"]
    assert image["Config"]["Labels"]["org.opencontainers.image.version"] == version("shiftaudit")


def test_health_is_serving_from_the_host_and_the_server_is_not_root(node):
    assert node.health() == health_pb2.HealthCheckResponse.SERVING
    podman("healthcheck", "run", node.name)  # the image's HEALTHCHECK, inside the container
    assert node.uid() == USER


def test_an_audit_through_the_container_equals_the_in_process_audit(node, mounts):
    with AuditClient(node.target) as client:
        remote = client.run("lite0.onnx", images=DataPath("photos"), **QUICK)
    out = mounts["base"] / "out"
    out.mkdir()
    os.chown(out, USER, USER)
    options = QUICK["options"]
    podman("run", "--rm", "--entrypoint", "audit-client", "-v", f"{mounts['models']}:/models:ro",
           "-v", f"{mounts['data']}:/data:ro", "-v", f"{out}:/out", IMAGE, "--engine", "/models/lite0.onnx",
           "--images", "/data/photos", "--size", str(options.size), *[a for p in options.protocols for a in ("--protocol", p)],
           "--no-progress", "--json", "/out/local.json")
    local = json.loads((out / "local.json").read_text())
    for key in ("protocols", "tallies", "images", "skipped", "frames", "config"):
        assert remote[key] == local[key], key
    assert remote["model"]["sha256"] == local["model"]["sha256"]
    assert remote["device"]["render"] == local["device"]["render"] == "cpu (compiled kernels)"


def test_the_image_ships_the_compiled_renderer_and_no_compiler():
    """The build stage compiled the kernels' host build beside the installed sources; the image itself has
    no compiler, so a renderer it had to build would be the NumPy fallback."""
    out = podman("run", "--rm", "--entrypoint", "python", IMAGE, "-c",
                 "import json, shutil; from shiftaudit import kernels as k; print(json.dumps("
                 "[[shutil.which(c) for c in ('c++', 'g++', 'cc')], sorted(p.name for p in k.SHIPPED.glob('*.so')), "
                 "[k.host_file(n) for n in k.KERNELS]]))")
    compilers, shipped, wanted = json.loads(out)
    assert compilers == [None, None, None]
    assert shipped == sorted(wanted)


def test_sigterm_lets_the_audit_finish_exits_0_and_the_report_stays(mounts):
    state = _state(mounts, "state-term")
    node = Node(_volumes(mounts, state), "--data-root", "/data", "--grace", "120").start()
    running, accepted = threading.Event(), []

    def audit() -> dict:
        with AuditClient(node.target) as client:
            return client.run("lite0.onnx", images=DataPath("photos"),
                              options=AuditOptions(pairs_per_image=40, protocols=("embed-black",)),
                              on_accepted=lambda audit_id, _: accepted.append(audit_id),
                              progress=lambda p: p.frames and running.set())

    try:
        with ThreadPoolExecutor(1) as pool:
            streamed = pool.submit(audit)
            assert running.wait(60), node.logs()
            assert node.terminate() == 0
            report = streamed.result(timeout=120)  # the stream got its report although SIGTERM came first
        log = node.log()
    finally:
        node.remove()
    audit_id = accepted[0]
    events = [(line.get("event"), line.get("audit_id")) for line in log]
    assert events.index(("shutting_down", None)) < events.index(("finished", audit_id)) < events.index(
        ("stopped", None))
    assert any(line.get("event") == "insecure_listen" and line["level"] == "warning" for line in log)
    again = Node(_volumes(mounts, state)).start()  # the next container on the same state directory
    try:
        with AuditClient(again.target) as client:
            stored = client.get(audit_id)
        assert stored.state == pb.AUDIT_STATE_SUCCEEDED and json.loads(stored.report_json) == report
        assert again.terminate() == 0
    finally:
        again.remove()
