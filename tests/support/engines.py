"""TensorRT engine files for the tests that run without TensorRT: bytes TensorRT would refuse (nothing
here deserialises them) with a manifest that describes them."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from shiftaudit.server.engine.runners.manifest import SCHEMA, manifest_path


def fake_engine(directory: Path, **manifest) -> Path:
    plan = directory / "m.plan"
    plan.write_bytes(b"not a real engine")
    data = {"schema": SCHEMA, "engine_sha256": hashlib.sha256(plan.read_bytes()).hexdigest(),
            "tensorrt": "10.13.0.35", "compute_capability": "9.0", "gpu": "NVIDIA H100", **manifest}
    manifest_path(plan).write_text(json.dumps(data))
    return plan
