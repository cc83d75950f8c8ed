"""One audit fanned out over several servers (``audit-client --server A --server B ...``).

The images are split into shards by content (a file's shard follows from its bytes alone), each shard
is uploaded to its own server and audited there with the same options, and the reports are merged from
their tallies: every random draw depends on the seed and the image's content, never on which images
share a run, so the merged report equals one audit of all the images on one server.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from shiftaudit.server.engine.files import file_sha256, image_files, shard_of
from shiftaudit.server.engine.labels import few, merge_labels, unknown_names
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.progress import Progress
from shiftaudit.server.engine.report import merge_reports

from .remote import AuditClient, RemoteError


def shards(files: list[tuple[str, Path]], n: int) -> list[list[tuple[str, Path]]]:
    """Shard k holds the (name, file)s whose content's sha256, read as a number, is k modulo n."""
    out: list[list[tuple[str, Path]]] = [[] for _ in range(n)]
    for name, path in files:
        out[shard_of(file_sha256(path), n)].append((name, path))
    return out


def run_sharded(targets: list[str], connect: Callable[[str], AuditClient], model: str, images: Path,
                options: AuditOptions, *, preprocessing: Mapping[str, Any] | None = None, labels_csv: str = "",
                timeout: float | None = None, progress: Callable[[Progress], None] | None = None) -> dict:
    """Audit ``images`` (a local directory) on every server of ``targets`` at once, one shard each, with
    `AuditClient.run`'s options. The first failure stops the other shards and is raised."""
    if len(set(targets)) != len(targets):
        raise ValueError("each --server may be named once")
    files = image_files(images)
    if not files:
        raise ValueError(f"no files in {images}")
    names = [name for name, _ in files]
    parts = [(t, s) for t, s in zip(targets, shards(files, len(targets))) if s]  # a server with no images idles
    clients = {t: connect(t) for t, _ in parts}
    start = time.perf_counter()
    try:
        digests = {t: clients[t].load_model(model).digest for t, _ in parts}
        if len(set(digests.values())) > 1:
            raise ValueError("the servers hold different models under that name: "
                             + ", ".join(f"{t} sha256 {d[:12]}..." for t, d in digests.items()))
        latest: dict[str, Progress] = {}
        lock = threading.Lock()
        failures: list[BaseException] = []  # the first is the cause: the others fail because it closed them

        def shard_progress(target: str) -> Callable[[Progress], None]:
            def report(p: Progress) -> None:
                with lock:
                    latest[target] = p
                    expected = [q.frames_total for q in latest.values()]
                    total = Progress(sum(q.images_done for q in latest.values()), len(files),
                                     sum(q.frames for q in latest.values()), time.perf_counter() - start,
                                     frames_total=sum(expected) if len(expected) == len(parts) and all(expected)
                                     else None)
                if progress:
                    progress(total)
            return report

        def audit(part: tuple[str, list[tuple[str, Path]]]) -> tuple[str, dict]:
            target, subset = part
            try:
                return target, clients[target].run(model, options, images=images, files=subset,
                                                   preprocessing=preprocessing, labels_csv=labels_csv,
                                                   timeout=timeout, progress=shard_progress(target))
            except RemoteError as e:
                stop(RemoteError(e.code, f"{target}: {e.details}"))
                raise
            except BaseException as e:
                stop(e)
                raise

        def stop(cause: BaseException) -> None:
            with lock:
                failures.append(cause)
            for client in clients.values():  # cancels the other shards' calls
                client.close()

        with ThreadPoolExecutor(len(parts)) as pool:
            futures = [pool.submit(audit, part) for part in parts]
            wait(futures)
        if failures:
            raise failures[0]
        reports = [f.result() for f in futures]
    finally:
        for client in clients.values():
            client.close()
    order = {name: i for i, name in enumerate(names)}
    merged = merge_reports(reports, order, time.perf_counter() - start)
    if labels_csv:
        merged["labels"] = merge_labels([r["labels"] for _, r in reports], order, few(unknown_names(labels_csv, names)))
    return merged
