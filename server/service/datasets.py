"""Where an audit's images come from on a server: a path under the data root, or an uploaded
dataset (files streamed by the client, kept under the state directory)."""
from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from shiftaudit.server.engine.budget import OverBudget
from shiftaudit.server.engine.files import PathError, relative_path, resolve_under
from shiftaudit.server.engine.images import MAX_BYTES

INCOMING = ".incoming-"  # uploads in progress: hidden, and not an id, so never usable as a dataset


class UploadError(ValueError):
    """An upload the server refuses (empty, too large, a name that cannot be stored); names that are not
    relative paths are a `PathError`."""


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 2 << 30  # one upload
    max_files: int = 100_000  # one upload
    max_state_bytes: int = 50 << 30  # everything the node keeps: reports and uploads


class Datasets:
    """Uploaded datasets on disk (a folder each under ``upload_dir``) and the data root."""

    def __init__(self, data_root: Path | None, upload_dir: Path, limits: UploadLimits = UploadLimits()) -> None:
        self.data_root = data_root.resolve() if data_root else None
        self.upload_dir = upload_dir
        self.limits = limits
        self.kept = 0  # bytes of the datasets the store accounts for (set at start, kept up to date)
        self.incoming = 0  # bytes of uploads in progress, and of complete ones not yet accounted
        upload_dir.mkdir(parents=True, exist_ok=True)
        for cut in upload_dir.glob(f"{INCOMING}*"):  # uploads a crash cut short
            shutil.rmtree(cut, ignore_errors=True)

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

    def on_disk(self) -> dict[str, tuple[int, int, float]]:
        """Every complete dataset on disk: id -> (files, bytes, modified), for the store to account for
        datasets it does not know (kept by an earlier version)."""
        out = {}
        for d in self.upload_dir.iterdir():
            if d.is_dir() and d.name.isalnum():
                files = [p for p in d.rglob("*") if p.is_file()]
                out[d.name] = (len(files), sum(p.stat().st_size for p in files), d.stat().st_mtime)
        return out

    def accounted(self, size: int) -> None:
        """An upload of ``size`` bytes that `receive` completed is now a dataset the store accounts for."""
        self.incoming -= size
        self.kept += size

    def forget(self, size: int) -> None:
        """A complete upload of ``size`` bytes was removed before the store accounted for it."""
        self.incoming -= size

    async def receive(self, chunks: AsyncIterator[tuple[str, bytes]], database: int) -> tuple[str, int, int]:
        """Store streamed (file name, bytes) chunks as a new dataset; returns (id, files, bytes). The files
        are written off the event loop into a hidden folder, renamed to the dataset's id only when the
        upload is complete: a cut upload is never a dataset. What the node keeps — ``database`` bytes of
        reports, the datasets, and uploads in progress — may not go over the state's limit, so
        simultaneous uploads cannot overrun it. A complete upload stays counted as incoming until the
        caller says it is `accounted` (or removes it and `forget`s it)."""
        dataset_id = uuid.uuid4().hex
        root = self.upload_dir / f"{INCOMING}{dataset_id}"
        await asyncio.to_thread(root.mkdir)
        files: dict[str, int] = {}  # bytes per file name
        total = 0
        name_now, out = "", None
        limits = self.limits
        try:
            async for name, data in chunks:
                if name and name != name_now:
                    if out:
                        out.close()
                    if name in files:
                        raise UploadError(f"file {name!r} uploaded twice")
                    if len(files) == limits.max_files:
                        raise OverBudget(f"upload of more than {limits.max_files} files, this server's limit "
                                         "(audit-server --max-upload-files); upload the images in parts")
                    out, name_now = await asyncio.to_thread(_open_new, root, name), name
                    files[name] = 0
                if out is None:
                    raise UploadError("the first chunk of an upload must name its file")
                total += len(data)
                self.incoming += len(data)
                files[name_now] += len(data)
                if total > limits.max_bytes:
                    raise OverBudget(f"upload larger than this server's limit of {limits.max_bytes} bytes "
                                     "(audit-server --max-upload-bytes)")
                if database + self.kept + self.incoming > limits.max_state_bytes:
                    raise OverBudget(f"the server keeps {database + self.kept} bytes of reports and uploads; this "
                                     "upload would "
                                     f"take it over its limit of {limits.max_state_bytes} (audit-server "
                                     "--max-state-bytes): delete datasets (DeleteDataset) or audits first")
                if files[name_now] > MAX_BYTES:
                    raise UploadError(f"file {name_now!r} is larger than {MAX_BYTES} bytes")
                await asyncio.to_thread(out.write, data)
            if not files:
                raise UploadError("empty upload: no file was sent")
            out.close()
            await asyncio.to_thread(root.rename, self.upload_dir / dataset_id)
        except BaseException:  # removed in the background: a large cut upload takes a while
            asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, root, True)
            self.incoming -= total
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
    except OSError as e:  # a file where a folder must go, or the reverse; a name too long
        raise UploadError(f"file name {name!r} cannot be stored: {e.strerror}") from None
