"""Where an audit's images come from on a server: a path under the data root, or an uploaded
dataset (files streamed by the client, kept under the state directory).

An uploaded dataset is on disk (a folder), in the store (a row: listed, retained, counted against the
state's limit) and, while audits use it, held. `Datasets` alone keeps that bookkeeping, so that the
bytes counted, the holds and the deletions cannot disagree: uploads, holds (`acquire`), deletion
(DeleteDataset and retention) and the reconciliation of disk and store at start all go through it."""
from __future__ import annotations

import asyncio
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from shiftaudit.server.engine.budget import OverBudget
from shiftaudit.server.engine.files import PathError, relative_path, resolve_under
from shiftaudit.server.engine.images import MAX_BYTES

from .errors import DISK_FAILING, NO_SPACE, Conflict
from .limits import ServerLimits
from .room import Room
from .store import AuditStore, StoreError

INCOMING = ".incoming-"  # uploads in progress: hidden, and not an id, so never usable as a dataset


class UploadError(ValueError):
    """An upload the server refuses (empty, too large, a name that cannot be stored); names that are not
    relative paths are a `PathError`."""


class Datasets:
    """The data root, and the uploaded datasets (a folder each under ``upload_dir``, a row each in
    ``store``) within the upload ``limits``."""

    def __init__(self, data_root: Path | None, upload_dir: Path, store: AuditStore, limits: ServerLimits) -> None:
        self.data_root = data_root.resolve() if data_root else None
        self.upload_dir = upload_dir
        self.store = store
        self.limits = limits
        self.room = Room(limits.max_state_bytes)  # the datasets' bytes (set by `reconcile`), uploads in progress
        self._in_use: Counter[str] = Counter()  # dataset id -> queued and running audits that use it
        self._deleting: set[str] = set()  # datasets being removed: no audit may take them meanwhile
        self._uploads = 0
        upload_dir.mkdir(parents=True, exist_ok=True)
        for cut in upload_dir.glob(f"{INCOMING}*"):  # uploads a crash cut short
            shutil.rmtree(cut, ignore_errors=True)

    @property
    def uploads(self) -> int:
        """Uploads in progress: at shutdown they get the grace period, like audits."""
        return self._uploads

    def reconcile(self) -> None:
        """At start, before any call: the store's datasets are the ones on disk (rows for datasets an
        earlier version kept without one: they count against the limits, and retention sees them; no
        rows for datasets gone from disk), and the bytes kept are theirs."""
        disk = self._on_disk()
        rows = {row.dataset_id for row in self.store.datasets()}
        for dataset_id in rows - disk.keys():
            self.store.remove_dataset(dataset_id)
        for dataset_id in disk.keys() - rows:
            files, size, modified = disk[dataset_id]
            self.store.add_dataset(dataset_id, files, size, created_at=modified)
        self.room.kept = sum(row.bytes for row in self.store.datasets())

    def data_path(self, relative: str) -> Path:
        if self.data_root is None:
            raise PathError("this server has no data root (start it with --data-root); upload the images instead")
        target = resolve_under(self.data_root, relative, "data")
        if not target.exists():
            raise FileNotFoundError(f"data path {relative} does not exist under the data root")
        return target

    def dataset(self, dataset_id: str) -> Path:
        if not dataset_id.isalnum():
            raise PathError(f"dataset id {dataset_id!r} is not an id UploadImages returned")
        path = self.upload_dir / dataset_id
        if not path.is_dir():
            raise FileNotFoundError(f"no dataset {dataset_id}")
        return path

    def _on_disk(self) -> dict[str, tuple[int, int, float]]:
        """Every complete dataset on disk: id -> (files, bytes, modified), for the store to account for
        datasets it does not know (kept by an earlier version)."""
        out = {}
        for d in self.upload_dir.iterdir():
            if d.is_dir() and d.name.isalnum():
                files = [p for p in d.rglob("*") if p.is_file()]
                out[d.name] = (len(files), sum(p.stat().st_size for p in files), d.stat().st_mtime)
        return out

    def acquire(self, dataset_id: str | None) -> Callable[[], None]:
        """Holds the dataset for an audit (``None``: the audit uses none), so that deletion leaves it
        alone; returns what gives it back. A dataset being deleted cannot be held."""
        if not dataset_id:
            return lambda: None
        if dataset_id in self._deleting:
            raise FileNotFoundError(f"no dataset {dataset_id}")
        self._in_use[dataset_id] += 1
        self.store.post(self.store.use_dataset, dataset_id)

        def release() -> None:
            self._in_use[dataset_id] -= 1
            if not self._in_use[dataset_id]:
                del self._in_use[dataset_id]
        return release

    async def delete(self, dataset_id: str) -> None:
        """Remove a dataset no audit holds (Conflict otherwise): marked first, so no audit takes it while
        its files go; its row, then its files. A dataset whose files vanished is still removed from the
        list."""
        if self._in_use[dataset_id]:
            raise Conflict(f"dataset {dataset_id} is used by a queued or running audit")
        if dataset_id in self._deleting:
            raise FileNotFoundError(f"no dataset {dataset_id}")
        self._deleting.add(dataset_id)
        try:
            try:
                path = self.dataset(dataset_id)
            except FileNotFoundError:
                path = None
            size = await self.store.call(self.store.remove_dataset, dataset_id)
            if size is None and path is None:
                raise FileNotFoundError(f"no dataset {dataset_id}")
            self.room.free(size or 0)
            if path:
                await asyncio.to_thread(shutil.rmtree, path, True)
        finally:
            self._deleting.discard(dataset_id)

    async def upload(self, chunks: AsyncIterator[tuple[str, bytes]]) -> tuple[str, int, int]:
        """Store streamed (file name, bytes) chunks as a new dataset, with its row; returns (id, files,
        bytes). A dataset the store cannot account for is removed: it would escape retention and the
        state's limit."""
        self._uploads += 1
        try:
            dataset_id, files, size = await self._receive(chunks, await self.store.call(self.store.database_bytes))
            try:
                await self.store.call(self.store.add_dataset, dataset_id, files, size)
            except StoreError:
                await asyncio.to_thread(shutil.rmtree, self.upload_dir / dataset_id, True)
                self.room.give_back(size)
                raise
            self.room.keep(size)
            return dataset_id, files, size
        finally:
            self._uploads -= 1

    async def _receive(self, chunks: AsyncIterator[tuple[str, bytes]], database: int) -> tuple[str, int, int]:
        """The chunks as a new dataset's files; returns (id, files, bytes). The files
        are written off the event loop into a hidden folder, renamed to the dataset's id only when the
        upload is complete: a cut upload is never a dataset. What the node keeps — ``database`` bytes of
        reports, the datasets, and uploads in progress — may not go over the state's limit, so
        simultaneous uploads cannot overrun it. A complete upload stays counted as incoming until
        `upload` has its row stored (or has removed it)."""
        dataset_id = uuid.uuid4().hex
        root = self.upload_dir / f"{INCOMING}{dataset_id}"
        files: dict[str, int] = {}  # bytes per file name
        total = 0
        name_now, out = "", None
        limits = self.limits
        try:
            await asyncio.to_thread(root.mkdir)
            async for name, data in chunks:
                if name and name != name_now:
                    if out:
                        out.close()
                    if name in files:
                        raise UploadError(f"file {name!r} uploaded twice")
                    if len(files) == limits.max_upload_files:
                        raise OverBudget(f"upload of more than {limits.max_upload_files} files, this server's "
                                         "max_upload_files; upload the images in parts")
                    out, name_now = await asyncio.to_thread(_open_new, root, name), name
                    files[name] = 0
                if out is None:
                    raise UploadError("the first chunk of an upload must name its file")
                self.room.take(len(data), database, "this upload")
                total += len(data)
                files[name_now] += len(data)
                if total > limits.max_upload_bytes:
                    raise OverBudget(f"upload larger than this server's max_upload_bytes of {limits.max_upload_bytes} "
                                     "bytes")
                if files[name_now] > MAX_BYTES:
                    raise UploadError(f"file {name_now!r} is larger than {MAX_BYTES} bytes")
                await asyncio.to_thread(out.write, data)
            if not files:
                raise UploadError("empty upload: no file was sent")
            out.close()
            await asyncio.to_thread(root.rename, self.upload_dir / dataset_id)
        except BaseException as e:  # removed in the background: a large cut upload takes a while
            if isinstance(e, OSError) and e.errno in DISK_FAILING | NO_SPACE:
                self.store.failed(e)  # health turns NOT_SERVING until the disk takes writes again
            asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, root, True)
            self.room.give_back(total)
            raise
        finally:
            if out:
                out.close()
        return dataset_id, len(files), total


def _open_new(root: Path, name: str):
    """A new file for an uploaded image named ``name``: a relative path, no hidden part (listing the
    dataset would not see it)."""
    path = root.joinpath(*relative_path(name, "uploaded file", hidden=False).parts)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("xb")
    except OSError as e:  # a file where a folder must go, or the reverse; a name too long; not the disk's
        if e.errno in DISK_FAILING | NO_SPACE:
            raise
        raise UploadError(f"file name {name!r} cannot be stored: {e.strerror}") from None
