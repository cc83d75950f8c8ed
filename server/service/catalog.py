"""The models a server may audit: files under its model root, named by relative path or digest,
opened once and shared by the audits that use them."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from shiftaudit.server.engine.files import file_sha256, inside, resolve_under
from shiftaudit.server.engine.runners import MODEL_SUFFIXES, EngineOptions, Runner, open_runner


@dataclass(frozen=True)
class ModelFile:
    path: Path
    relative: str
    digest: str
    size: int


class ModelCatalog:
    """Models are opened with the operator's ``options`` (TensorRT host code, ONNX Runtime's TensorRT
    provider); engines load only from under the root, like every model."""

    def __init__(self, root: Path, options: EngineOptions = EngineOptions()) -> None:
        if not root.is_dir():
            raise FileNotFoundError(f"model root {root} is not a directory")
        self.root = root.resolve()
        self.options = options
        self._digests: dict[Path, tuple[tuple[int, int], str]] = {}
        self._runners: dict[Path, Runner] = {}
        self._lock = threading.Lock()

    def _file(self, path: Path) -> ModelFile:
        st = path.stat()
        key = (st.st_mtime_ns, st.st_size)
        cached = self._digests.get(path)
        if cached is None or cached[0] != key:
            cached = (key, file_sha256(path))
            self._digests[path] = cached
        return ModelFile(path, str(path.relative_to(self.root)), cached[1], st.st_size)

    def files(self) -> list[ModelFile]:
        paths = sorted({p.resolve() for p in self.root.rglob("*")  # a link to a model is that model: listed once
                        if p.suffix.lower() in MODEL_SUFFIXES and p.is_file()})
        return [self._file(p) for p in paths if inside(self.root, p)]

    def resolve(self, path: str = "", digest: str = "") -> ModelFile:
        """The model named by a path under the root, or by the sha256 of its file."""
        if digest:
            for f in self.files():
                if f.digest == digest.lower():
                    return f
            raise FileNotFoundError(f"no model under the model root has digest {digest}")
        target = resolve_under(self.root, path, "model")
        if not target.is_file():
            raise FileNotFoundError(f"model {path} does not exist under the model root")
        return self._file(target)

    def loaded(self, f: ModelFile) -> bool:
        return f.path in self._runners

    def load(self, f: ModelFile) -> Runner:
        with self._lock:
            if f.path not in self._runners:
                self._runners[f.path] = open_runner(f.path, self.options)
            return self._runners[f.path]

    def unload(self, f: ModelFile) -> bool:
        with self._lock:
            runner = self._runners.pop(f.path, None)
        if runner is None:
            return False
        runner.close()
        return True

    def close(self) -> None:
        with self._lock:
            for runner in self._runners.values():
                runner.close()
            self._runners.clear()
