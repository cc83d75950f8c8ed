"""A pipeline that talks to an audit-server imports the gRPC client, and with it nothing of the engine:
no OpenCV, no ONNX Runtime, no TensorRT, no runner, no kernel launcher (import-linter's contract in CI
says the same of the import graph; this is what a fresh interpreter actually loads)."""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("cv2", "onnxruntime", "tensorrt", "cuda", "shiftaudit.server.engine.runners",
         "shiftaudit.server.engine.images", "shiftaudit.server.engine.render", "shiftaudit.kernels.launch")


def test_importing_the_grpc_client_and_the_fan_out_loads_no_engine():
    code = ("import json, sys\n"
            "from shiftaudit.client.remote import AuditClient\n"
            "from shiftaudit.client.fanout import run_sharded\n"
            "from shiftaudit.client import AuditOptions\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []


def test_the_in_process_api_still_loads_the_engine_when_asked():
    """The check above can fail: the same interpreter does load the engine for ``audit``."""
    code = ("import json, sys\n"
            "from shiftaudit.client import audit\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert {"cv2", "shiftaudit.server.engine.runners", "shiftaudit.server.engine.render"} <= set(json.loads(run.stdout))
