"""The models a server may audit: files under its model root, named by relative path or digest,
opened once and shared by the audits that use them."""
from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from shiftaudit.server.engine.budget import OverBudget
from shiftaudit.server.engine.files import file_sha256, inside, resolve_under
from shiftaudit.server.engine.runners import MODEL_SUFFIXES, EngineOptions, Runner, open_runner


@dataclass(frozen=True)
class ModelFile:
    path: Path
    relative: str
    digest: str
    size: int


@dataclass
class _Loaded:
    """An open model: how many audits hold it, and whether it closes when the last lets go."""

    runner: Runner
    leases: int = 0
    closing: bool = False
    audited: bool = False  # an audit used it since its memory was last given back


class Lease:
    """An audit's hold on a model: it is not closed (unloaded, evicted) before `release`."""

    def __init__(self, catalog: ModelCatalog, entry: _Loaded) -> None:
        self._catalog, self._entry = catalog, entry
        self.runner = entry.runner

    def release(self) -> None:
        """Idempotent, and quick: what follows (closing, giving memory back) happens on the catalog's
        own thread, so the event loop may call this."""
        if self._entry is not None:
            self._catalog._idle.submit(self._catalog._release, self._entry)
            self._entry = None


class ModelCatalog:
    """Models are opened with the operator's ``options`` (TensorRT host code, ONNX Runtime's TensorRT
    provider); engines load only from under the root, like every model. At most ``max_loaded`` stay
    open (the server's ``max_loaded_models``, which `ServerLimits` checks): opening another closes the
    least recently used one that no audit holds."""

    def __init__(self, root: Path, max_loaded: int, options: EngineOptions = EngineOptions()) -> None:
        if not root.is_dir():
            raise FileNotFoundError(f"model root {root} is not a directory")
        self.root = root.resolve()
        self.options = options
        self.max_loaded = max_loaded
        self._digests: dict[Path, tuple[tuple[int, int], str]] = {}
        self._loaded: OrderedDict[Path, _Loaded] = OrderedDict()  # least recently used first
        self._closing: list[_Loaded] = []  # unloaded, but an audit still holds them: they count too
        self._lock = threading.Lock()
        self._idle = ThreadPoolExecutor(1, thread_name_prefix="shiftaudit-idle")

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
        return f.path in self._loaded

    def load(self, f: ModelFile) -> None:
        """Open the model now (LoadModel: the first audit does not wait for it)."""
        self.lease(f).release()

    def lease(self, f: ModelFile, audit: bool = False) -> Lease:
        """The open model, held until the lease is released; opened first if it is not (OverBudget when
        every open model is held and no more may be open). An ``audit``'s lease makes the model give back
        its engine's memory when the last audit lets go."""
        with self._lock:
            entry = self._loaded.get(f.path)
            if entry is None:
                self._make_room()
                entry = self._loaded[f.path] = _Loaded(open_runner(f.path, self.options))
            self._loaded.move_to_end(f.path)
            entry.leases += 1
            entry.audited |= audit
            return Lease(self, entry)

    def _make_room(self) -> None:
        while len(self._loaded) + len(self._closing) >= self.max_loaded:
            idle = next((path for path, e in self._loaded.items() if not e.leases), None)
            if idle is None:
                raise OverBudget(f"{len(self._loaded) + len(self._closing)} models are open and in use by audits, "
                                 "this server's max_loaded_models; retry when an audit ends")
            self._loaded.pop(idle).runner.close()

    def _release(self, entry: _Loaded) -> None:
        """The last audit that held the model ended: it closes (if it was unloaded meanwhile), or gives back
        the memory its engine keeps between calls (in the background: the caller may be the event loop)."""
        with self._lock:
            entry.leases -= 1
            if entry.leases:
                return
            if entry.closing:
                self._closing.remove(entry)
                entry.runner.close()
            elif entry.audited:
                entry.audited = False
                entry.runner.release_memory()

    def unload(self, f: ModelFile) -> bool:
        """Close the model, once no audit holds it any more (at once when none does)."""
        with self._lock:
            entry = self._loaded.pop(f.path, None)
            if entry is None:
                return False
            entry.closing = True
            if entry.leases:
                self._closing.append(entry)
            else:
                entry.runner.close()
            return True

    def close(self) -> None:
        self._idle.shutdown(wait=True)
        with self._lock:
            for entry in self._loaded.values():
                entry.runner.close()
            self._loaded.clear()
