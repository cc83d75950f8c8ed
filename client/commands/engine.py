"""``audit-client build-engine`` and ``audit-client inspect``: a TensorRT engine and its manifest.

An engine runs only under the TensorRT release and on the GPU architecture that built it. Building it
here writes ``<engine>.manifest.json`` beside it, so a server can say why an engine cannot run before
deserialising it (which runs the engine's code); ``inspect`` says whether this node can run one.
"""
from __future__ import annotations

import json
from pathlib import Path

from shiftaudit.server.engine.files import file_sha256
from shiftaudit.server.engine.runners import BuildOptions
from shiftaudit.server.engine.runners.manifest import (
    EngineMismatch,
    check_file,
    check_runtime,
    manifest_path,
    read_manifest,
)

from ..args import Argument, Command, Options


def _build(onnx: Path, output: Path | None, build: BuildOptions) -> int:
    from shiftaudit.server.engine.runners.tensorrt import build_engine

    if not onnx.is_file():
        raise FileNotFoundError(f"model {onnx} does not exist")
    out = output or onnx.with_suffix(".plan")
    manifest = build_engine(onnx, out, build)
    print(f"wrote {out} and {manifest_path(out).name}: TensorRT {manifest['tensorrt']}, {manifest['gpu']} "
          f"(compute capability {manifest['compute_capability']})")
    return 0


def _inspect(engine: Path) -> int:
    """Checks in the order a server makes them: the file against its manifest, then this node's
    TensorRT and GPU; the first failure is raised (exit 3), like loading the engine would."""
    from shiftaudit.server.engine.runners.tensorrt import import_tensorrt, open_gpu

    if not engine.is_file():
        raise FileNotFoundError(f"engine {engine} does not exist")
    manifest = read_manifest(engine)
    if manifest is None:
        raise EngineMismatch(f"{engine}: no manifest ({manifest_path(engine).name}); only deserialising it would tell "
                             "(build engines with audit-client build-engine)")
    print(json.dumps({k: v for k, v in manifest.items() if k != "tensors"}, indent=1))
    for t in manifest.get("tensors", []):
        print(f"{'input ' if t['input'] else 'output'} {t['name']}: {t['dtype']} {t['shape']}"
              + (f" profile {t['profile']}" if t.get("profile") else ""))
    check_file(manifest, engine, file_sha256(engine))
    trt, gpu = import_tensorrt(), open_gpu()
    check_runtime(manifest, engine, trt.__version__, gpu.compute_capability)
    print(f"this node can run it: TensorRT {trt.__version__}, {gpu.name}")
    return 0


BUILD = Command("audit-client build-engine", "Build a TensorRT engine from an ONNX model on this GPU, with its "
                "manifest.", {"onnx": Argument(("onnx",), {"type": Path, "help": "the ONNX model"}),
                              "output": Argument(("-o", "--output"), {"type": Path, "help": "the engine (default: the "
                                                                     "model's name with .plan)"}),
                              "build": Options(BuildOptions)}, _build)
INSPECT = Command("audit-client inspect", "Show a TensorRT engine's manifest and whether this node can run it (exit "
                  "0: it can, 3: it cannot).", {"engine": Argument(("engine",), {"type": Path})}, _inspect)
