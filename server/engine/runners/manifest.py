"""The manifest of a TensorRT engine: ``<engine>.manifest.json`` beside it, written by
``audit-client build-engine``. An engine runs only under the TensorRT version and on the GPU
architecture it was built for, and deserialising one runs its code; the manifest lets a server say
why an engine cannot run here before it deserialises anything."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelError

SCHEMA = "shiftaudit.engine-manifest/v1"


class EngineMismatch(ModelError):
    """The engine was built for another TensorRT, another GPU, or is not the file its manifest names."""


def manifest_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".manifest.json")


def read_manifest(engine: Path) -> dict | None:
    """The engine's manifest, or None when it has none (then TensorRT's own checks are all there is)."""
    path = manifest_path(engine)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise EngineMismatch(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise EngineMismatch(f"{path}: not a {SCHEMA} manifest")
    return manifest


def check_file(manifest: dict, engine: Path, sha256: str) -> None:
    """The engine is the file the manifest was written for."""
    if manifest.get("engine_sha256") != sha256:
        raise EngineMismatch(f"{engine}: the file changed since its manifest was written (sha256 {sha256[:12]}..., "
                             f"manifest {str(manifest.get('engine_sha256'))[:12]}...); rebuild it or rewrite the manifest")


def _release(version: str) -> tuple[int, ...]:
    """'10.13.0.35' or '10.2.0.post1' -> (10, 13, 0)."""
    parts = []
    for p in version.split(".")[:3]:
        digits = "".join(c for c in p if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_runtime(manifest: dict, engine: Path, tensorrt: str, compute_capability: tuple[int, int]) -> None:
    """The installed TensorRT and this GPU can run the engine. A plain engine needs the very TensorRT
    release that built it; a version-compatible one the same major version, not older than the builder.
    A plain engine needs the GPU's compute capability; AMPERE_PLUS ones any of 8.0 and later."""
    built = str(manifest.get("tensorrt", ""))
    if manifest.get("version_compatible"):
        ok = _release(tensorrt)[0] == _release(built)[0] and _release(tensorrt) >= _release(built)
        need = f"TensorRT {_release(built)[0]}.x, {built} or later"
    else:
        ok = _release(tensorrt) == _release(built)
        need = f"TensorRT {built}"
    if not ok:
        raise EngineMismatch(f"{engine}: built with TensorRT {built}, this node has {tensorrt}; it needs {need} "
                             "(rebuild the engine here, or build it version-compatible)")
    cc = tuple(int(v) for v in str(manifest.get("compute_capability", "0.0")).split("."))
    if manifest.get("hardware_compatibility") == "AMPERE_PLUS":
        ok, need = compute_capability >= (8, 0), "compute capability 8.0 or later"
    else:
        ok, need = compute_capability == cc, f"compute capability {'.'.join(map(str, cc))}"
    if not ok:
        raise EngineMismatch(f"{engine}: built for a GPU of {need}, this one is "
                             f"{compute_capability[0]}.{compute_capability[1]} ({manifest.get('gpu', 'unknown GPU')} "
                             "built it); rebuild the engine on this GPU")
