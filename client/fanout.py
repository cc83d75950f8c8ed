"""One audit fanned out over several servers (``audit-client --server A --server B ...``).

The images are split into shards by content (a file's shard follows from its bytes alone), each shard
is uploaded to its own server and audited there with the same options, and the reports are merged from
their tallies: every random draw depends on the seed and the image's content, never on which images
share a run, so the merged report equals one audit of all the images on one server.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from shiftaudit.server.engine.errors import InputError
from shiftaudit.server.engine.files import file_sha256, image_files, shard_of
from shiftaudit.server.engine.labels import few, unknown_names
from shiftaudit.server.engine.options import AuditOptions
from shiftaudit.server.engine.progress import Progress
from shiftaudit.server.engine.report import Report, merge_reports

from .connection import Connection
from .remote import AuditClient, RemoteError, Upload


def shards(files: list[tuple[str, Path]], n: int) -> list[list[tuple[str, Path]]]:
    """Shard k holds the (name, file)s whose content's sha256, read as a number, is k modulo n."""
    out: list[list[tuple[str, Path]]] = [[] for _ in range(n)]
    for name, path in files:
        out[shard_of(file_sha256(path), n)].append((name, path))
    return out


# the request's own fault: every server would refuse it, so it fails the audit at once rather than move
REQUEST_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAUTHENTICATED,
                  grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.FAILED_PRECONDITION}


class FanOutError(RemoteError):
    """No server could take a shard: each server's own error, named."""


@dataclass
class _Shard:
    index: int
    files: list[tuple[str, Path]]
    failed_on: list[str] = field(default_factory=list)  # servers that failed it, in order


class _Fleet:
    """The shards waiting, the servers that may take them, and each server's failure. A shard a server
    fails goes back in the queue for the others; a server that failed takes no more."""

    def __init__(self, parts: list[_Shard], targets: list[str]) -> None:
        self.waiting, self.running = list(parts), 0
        self.live = set(targets)
        self.failed: dict[str, str] = {}
        self.cause: BaseException | None = None  # an error no other server can help with
        self.done = threading.Condition()

    def take(self, target: str) -> _Shard | None:
        """The next shard for ``target``; None when nothing is left to do (or the audit failed). A server
        with nothing to take waits while shards run elsewhere: one of them may come back."""
        with self.done:
            while not self.waiting and self.running and self.cause is None:
                self.done.wait()
            if not self.waiting or self.cause is not None or target not in self.live:
                return None
            self.running += 1
            return self.waiting.pop(0)

    def finish(self, shard: _Shard, failure: str | None = None, target: str = "") -> None:
        with self.done:
            self.running -= 1
            if failure is not None:
                self.live.discard(target)
                self.failed[target] = failure
                shard.failed_on.append(target)
                self.waiting.insert(0, shard)
            self.done.notify_all()

    def stop(self, cause: BaseException) -> None:
        with self.done:
            self.cause = self.cause or cause
            self.done.notify_all()


def run_sharded(targets: Sequence[str], connection: Connection, model: str, images: Path, options: AuditOptions, *,
                preprocessing: Mapping[str, Any] | None = None, labels_csv: str = "",
                progress: Callable[[Progress], None] | None = None) -> dict:
    """Audit ``images`` (a local directory) on the servers of ``targets`` at once, a shard each, with
    `AuditClient.run`'s options. A server that fails or cannot be reached gives its shard back and the
    others take it; the audit fails, naming every server's error, only when no server is left for a
    shard, or at once when the request itself is wrong (`REQUEST_ERRORS`: every server would refuse it)."""
    if len(set(targets)) != len(targets):
        raise InputError("each server may be named once")
    files = image_files(images)
    if not files:
        raise InputError(f"no files in {images}")
    names = [name for name, _ in files]
    parts = [_Shard(k, s) for k, s in enumerate(shards(files, len(targets))) if s]
    clients = {t: connection.connect(t) for t in targets}
    timeout = connection.timeout
    start = time.perf_counter()
    fleet = _Fleet(parts, targets)
    try:
        _check_models(clients, model, fleet)
        latest: dict[int, Progress] = {}  # by shard: a shard run again replaces what it had reported
        lock = threading.Lock()

        def shard_progress(index: int) -> Callable[[Progress], None]:
            def report(p: Progress) -> None:
                with lock:
                    latest[index] = p
                    expected = [q.frames_total for q in latest.values()]
                    total = Progress(sum(q.images_done for q in latest.values()), len(files),
                                     sum(q.frames for q in latest.values()), time.perf_counter() - start,
                                     frames_total=sum(expected) if len(expected) == len(parts) and all(expected)
                                     else None)
                if progress:
                    progress(total)
            return report

        reports: dict[int, tuple[str, Report]] = {}

        def serve(target: str) -> None:
            while (shard := fleet.take(target)) is not None:
                try:
                    report = clients[target].run(model, options, images=Upload(images, shard.files),
                                                 preprocessing=preprocessing, labels_csv=labels_csv, timeout=timeout,
                                                 progress=shard_progress(shard.index))
                except RemoteError as e:
                    if e.code in REQUEST_ERRORS:
                        fleet.finish(shard)
                        fleet.stop(RemoteError(e.code, f"{target}: {e.details}"))
                        _close(clients)  # cancels the other shards' calls
                        return
                    fleet.finish(shard, f"{e.code.name}: {e.details}", target)
                    return
                except BaseException as e:  # a local failure (a file that cannot be read): every server would meet it
                    fleet.finish(shard)
                    fleet.stop(e)
                    _close(clients)
                    return
                reports[shard.index] = (target, Report.from_json(report))
                fleet.finish(shard)

        with ThreadPoolExecutor(len(targets)) as pool:
            wait([pool.submit(serve, t) for t in sorted(fleet.live, key=targets.index)])
        if fleet.cause is not None:
            raise fleet.cause
        if fleet.waiting:
            raise FanOutError(grpc.StatusCode.UNAVAILABLE, "no server could take the audit's shards: " + "; ".join(
                f"{t}: {why}" for t, why in fleet.failed.items()))
        reports_in_order = [reports[p.index] for p in parts]
    finally:
        _close(clients)
    order = {name: i for i, name in enumerate(names)}
    unknown = few(unknown_names(labels_csv, names)) if labels_csv else None
    return merge_reports(reports_in_order, order, time.perf_counter() - start, unknown,
                         [part.failed_on for part in parts]).to_json()


def _check_models(clients: dict[str, AuditClient], model: str, fleet: _Fleet) -> None:
    """Every server that answers holds the same model under ``model``; one that cannot be reached is
    counted failed (its shard goes to the others), one that holds another model fails the audit."""
    digests = {}
    for target, client in clients.items():
        try:
            digests[target] = client.load_model(model).digest
        except RemoteError as e:
            if e.code in REQUEST_ERRORS:
                raise RemoteError(e.code, f"{target}: {e.details}") from None
            fleet.live.discard(target)
            fleet.failed[target] = f"{e.code.name}: {e.details}"
    if len(set(digests.values())) > 1:
        raise ValueError("the servers hold different models under that name: "
                         + ", ".join(f"{t} sha256 {d[:12]}..." for t, d in digests.items()))
    if not digests:
        raise FanOutError(grpc.StatusCode.UNAVAILABLE, "no server could take the audit: " + "; ".join(
            f"{t}: {why}" for t, why in fleet.failed.items()))


def _close(clients: dict[str, AuditClient]) -> None:
    for client in clients.values():
        client.close()
