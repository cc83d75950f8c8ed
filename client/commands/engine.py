"""``audit-client build-engine`` and ``audit-client inspect``: a TensorRT engine and its manifest.

An engine runs only under the TensorRT release and on the GPU architecture that built it. Building it
here writes ``<engine>.manifest.json`` beside it, so a server can say why an engine cannot run before
deserialising it (which runs the engine's code); ``inspect`` says whether this node can run one.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from shiftaudit.server.engine.files import file_sha256
from shiftaudit.server.engine.runners.manifest import (
    EngineMismatch,
    check_file,
    check_runtime,
    manifest_path,
    read_manifest,
)
from shiftaudit.server.engine.runners.tensorrt import build_engine, import_tensorrt, open_gpu

from .flags import Parser


class Tool(NamedTuple):
    parser: Callable[[], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]


def _build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="audit-client build-engine",
                                 description="Build a TensorRT engine from an ONNX model on this GPU, with its manifest.")
    ap.add_argument("onnx", type=Path, help="the ONNX model")
    ap.add_argument("-o", "--output", type=Path, help="the engine (default: the model's name with .plan)")
    ap.add_argument("--max-batch", type=int, default=32, help="largest batch of a dynamic-batch model (default 32); "
                    "audits then send batches of this size")
    ap.add_argument("--fp16", action="store_true", help="let TensorRT 10 pick float16 kernels (TensorRT 11: convert "
                    "the ONNX model to float16 instead)")
    ap.add_argument("--workspace-mib", type=int, help="builder workspace limit")
    ap.add_argument("--version-compatible", action="store_true", help="an engine later TensorRT releases of the "
                    "same major version run (it carries host code: load it with --allow-engine-host-code)")
    ap.add_argument("--hardware-compatible", action="store_true", help="an engine every GPU of compute "
                    "capability 8.0 and later runs (Ampere and newer)")
    return ap


def _build(args: argparse.Namespace) -> int:
    if not args.onnx.is_file():
        raise FileNotFoundError(f"model {args.onnx} does not exist")
    if not 1 <= args.max_batch <= 4096:
        raise ValueError("--max-batch must lie in 1..4096")
    out = args.output or args.onnx.with_suffix(".plan")
    manifest = build_engine(args.onnx, out, max_batch=args.max_batch, fp16=args.fp16,
                            workspace_mib=args.workspace_mib, version_compatible=args.version_compatible,
                            hardware_compatible=args.hardware_compatible)
    print(f"wrote {out} and {manifest_path(out).name}: TensorRT {manifest['tensorrt']}, {manifest['gpu']} "
          f"(compute capability {manifest['compute_capability']})")
    return 0


def _inspect_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="audit-client inspect",
                                 description="Show a TensorRT engine's manifest and whether this node can run it "
                                             "(exit 0: it can, 3: it cannot).")
    ap.add_argument("engine", type=Path)
    return ap


def _inspect(args: argparse.Namespace) -> int:
    """Checks in the order a server makes them: the file against its manifest, then this node's
    TensorRT and GPU; the first failure is raised (exit 3), like loading the engine would."""
    if not args.engine.is_file():
        raise FileNotFoundError(f"engine {args.engine} does not exist")
    manifest = read_manifest(args.engine)
    if manifest is None:
        raise EngineMismatch(f"{args.engine}: no manifest ({manifest_path(args.engine).name}); only deserialising "
                             "it would tell (build engines with audit-client build-engine)")
    print(json.dumps({k: v for k, v in manifest.items() if k != "tensors"}, indent=1))
    for t in manifest.get("tensors", []):
        print(f"{'input ' if t['input'] else 'output'} {t['name']}: {t['dtype']} {t['shape']}"
              + (f" profile {t['profile']}" if t.get("profile") else ""))
    check_file(manifest, args.engine, file_sha256(args.engine))
    trt, gpu = import_tensorrt(), open_gpu()
    check_runtime(manifest, args.engine, trt.__version__, gpu.compute_capability)
    print(f"this node can run it: TensorRT {trt.__version__}, {gpu.name}")
    return 0


build = Tool(_build_parser, _build)
inspect = Tool(_inspect_parser, _inspect)
