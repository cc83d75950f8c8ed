"""The gRPC AuditService (grpc.aio): the handlers. Audits run in worker threads, never on the event
loop; `admission.py` bounds how many run and wait. The RunAudit stream owns its audit: a client that
cancels, or a deadline that expires, stops the audit's work at the next batch.
"""
from __future__ import annotations

import asyncio
import json
import logging
import platform
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from shiftaudit.server.engine.budget import MemoryBudget
from shiftaudit.server.engine.files import PathError
from shiftaudit.server.engine.images import image_sources
from shiftaudit.server.engine.job import Job, package_version
from shiftaudit.server.engine.pipeline import Cancelled
from shiftaudit.server.engine.preprocessing import load_preprocessing
from shiftaudit.server.engine.progress import Progress
from shiftaudit.server.engine.render import gpu_renderer
from shiftaudit.server.engine.runners.tensorrt import tensorrt_version
from shiftaudit.server.wire import options_from_proto, preprocessing_from_proto
from shiftaudit.v1 import audit_service_pb2 as pb
from shiftaudit.v1 import audit_service_pb2_grpc as pb_grpc

from . import logs
from .admission import Admission, Full, Place
from .catalog import Lease, ModelCatalog, ModelFile
from .datasets import Datasets
from .errors import Errors, status_of
from .messages import audit_message, dataset_message
from .metrics import Metrics
from .store import UNFINISHED, AuditStore, StoreError


@dataclass(frozen=True)
class Limits:
    max_concurrent_audits: int = 1
    max_queued_audits: int = 8
    budget: MemoryBudget = MemoryBudget(audit_bytes=1 << 30, max_batch=128)
    retain_days: float = 30.0  # 0: kept until deleted


log = logging.getLogger("shiftaudit.server")
T = TypeVar("T")


class Busy(Exception):
    """What the request would remove is in use."""


class _Holds:
    """What one RunAudit holds: its place, its model lease, its mark on a dataset. Given back once, when
    the handler has ended and its work too (a handler may end while its worker thread still runs: a
    client gone in the middle of a send closes the handler without waiting)."""

    def __init__(self, place: Place, unmark: Callable[[], None]) -> None:
        self.place, self.unmark = place, unmark
        self.lease: Lease | None = None  # set by the preparation thread
        self.work: asyncio.Future | None = None  # the preparation, then the audit's worker

    def give_back(self) -> None:
        if self.work is not None and not self.work.done():
            self.work.add_done_callback(self._work_ended)
        else:
            self._release()

    def _work_ended(self, work: asyncio.Future) -> None:
        """The work of a handler that ended first: its outcome (a Cancelled, most often) is nobody's to
        report any more; reading it keeps asyncio from logging it as never retrieved."""
        if not work.cancelled():
            work.exception()
        self._release()

    def _release(self) -> None:
        if self.lease:
            self.lease.release()
        self.place.leave()
        self.unmark()


class AuditService(pb_grpc.AuditServiceServicer):
    def __init__(self, catalog: ModelCatalog, datasets: Datasets, store: AuditStore, limits: Limits) -> None:
        self.catalog, self.datasets, self.store, self.limits = catalog, datasets, store, limits
        self.admission = Admission(limits.max_concurrent_audits, limits.max_queued_audits)
        self.metrics = Metrics(self.admission)
        self.errors = Errors({catalog.root: "<model root>", datasets.data_root: "<data root>",
                              store.path.parent: "<state dir>"},
                             on_error=lambda code: self.metrics.errors.labels(code).inc())
        # Audits, and the preparation of audits (listing images, loading models), have threads of their own:
        # however many run, the default pool stays free for the control plane (ListModels, metadata...).
        self._audits = ThreadPoolExecutor(limits.max_concurrent_audits, thread_name_prefix="shiftaudit-audit")
        self._preparing = ThreadPoolExecutor(max(2, limits.max_concurrent_audits),
                                             thread_name_prefix="shiftaudit-prepare")
        self._stops: dict[str, tuple[threading.Event, asyncio.Event]] = {}
        self._in_use: Counter[str] = Counter()  # dataset id -> queued and running audits that use it
        self._deleting: set[str] = set()  # datasets being removed: no audit may take them meanwhile
        self._workers: set[asyncio.Future] = set()  # audits' work in progress (awaited at shutdown)
        self._uploads = 0  # in progress
        self.shutting_down = False

    # --- helpers -------------------------------------------------------------------------------
    def _model(self, ref: pb.ModelRef) -> ModelFile:
        which = ref.WhichOneof("ref")
        if which is None:
            raise PathError("name the model by path (relative to the model root) or by digest")
        return self.catalog.resolve(path=ref.path) if which == "path" else self.catalog.resolve(digest=ref.digest)

    def _event(self, name: str, **fields: Any) -> None:
        """An audit event: a log line, and a count by state (``finished`` counts as succeeded)."""
        logs.event(name, **fields)
        self.metrics.audits.labels("succeeded" if name == "finished" else name).inc()

    async def _stored(self, context: grpc.aio.ServicerContext, method: Callable[..., T], *args: Any) -> T:
        """A store call for a handler: a store that cannot answer ends the call UNAVAILABLE."""
        try:
            return await self.store.call(method, *args)
        except StoreError as e:
            await self.errors.abort(context, e)
            raise  # abort raises; this line is for the type checker

    def _model_info(self, f: ModelFile) -> pb.ModelInfo:
        return pb.ModelInfo(path=f.relative, digest=f.digest, size_bytes=f.size, loaded=self.catalog.loaded(f))

    # --- server and models ---------------------------------------------------------------------
    async def GetServerInfo(self, request, context):
        import onnxruntime as ort

        render, gpu = gpu_renderer()
        return pb.GetServerInfoResponse(
            version=package_version("shiftaudit") or "", onnxruntime_version=ort.__version__,
            tensorrt_version=tensorrt_version() or "",
            cuda_version=render.memory.launch.nvrtc if render else "",
            driver_version=render.memory.launch.driver_version if render else "",
            devices=[f"cpu ({platform.machine()})"] + ([gpu] if render else []),
            execution_providers=ort.get_available_providers(),
            max_concurrent_audits=self.limits.max_concurrent_audits,
            max_queued_audits=self.limits.max_queued_audits, max_upload_bytes=self.datasets.limits.max_bytes,
            max_upload_files=self.datasets.limits.max_files, max_state_bytes=self.datasets.limits.max_state_bytes,
            state_bytes=await self._stored(context, self.store.state_bytes), retain_days=self.limits.retain_days)

    async def ListModels(self, request, context):
        files = await asyncio.to_thread(self.catalog.files)
        return pb.ListModelsResponse(models=[self._model_info(f) for f in files])

    async def LoadModel(self, request, context):
        try:
            f = await asyncio.to_thread(self._model, request.model)
            await asyncio.to_thread(self.catalog.load, f)
        except Exception as e:
            await self.errors.abort(context, e)
        return pb.LoadModelResponse(model=self._model_info(f))

    async def UnloadModel(self, request, context):
        try:
            f = await asyncio.to_thread(self._model, request.model)
        except Exception as e:
            await self.errors.abort(context, e)
        return pb.UnloadModelResponse(unloaded=await asyncio.to_thread(self.catalog.unload, f))

    async def GetModelMetadata(self, request, context):
        def describe(f: ModelFile) -> tuple:
            pre = load_preprocessing(f.path)
            lease = self.catalog.lease(f)
            try:
                return pre, lease.runner.io_tensors(), lease.runner.input_spec().layout, lease.runner.name
            finally:
                lease.release()

        try:
            f = await asyncio.to_thread(self._model, request.model)
            pre, io, layout, name = await asyncio.to_thread(describe, f)
        except Exception as e:
            await self.errors.abort(context, e)
        tensors = {kind: [pb.TensorInfo(name=t["name"], shape=t["shape"], dtype=t["dtype"]) for t in io[kind]]
                   for kind in ("inputs", "outputs")}
        return pb.GetModelMetadataResponse(model=self._model_info(f), runner=name, layout=layout,
                                           preprocessing_json=json.dumps(pre.to_json()), **tensors)

    # --- images --------------------------------------------------------------------------------
    async def UploadImages(self, request_iterator, context):
        async def chunks() -> AsyncIterator[tuple[str, bytes]]:
            async for msg in request_iterator:
                yield msg.file_name, msg.data

        self._uploads += 1
        try:
            dataset_id, files, size = await self.datasets.receive(chunks(),
                                                                  await self.store.call(self.store.database_bytes))
            try:
                await self.store.call(self.store.add_dataset, dataset_id, files, size)
            except StoreError:  # a dataset the store does not account for would escape retention and quotas
                await asyncio.to_thread(shutil.rmtree, self.datasets.dataset(dataset_id), True)
                self.datasets.forget(size)
                raise
            self.datasets.accounted(size)
        except Exception as e:
            await self.errors.abort(context, e)
        finally:
            self._uploads -= 1
        return pb.UploadImagesResponse(dataset_id=dataset_id, files=files, bytes=size)

    async def ListDatasets(self, request, context):
        try:
            rows = await self.store.call(self.store.datasets)
        except Exception as e:
            await self.errors.abort(context, e)
        return pb.ListDatasetsResponse(datasets=[dataset_message(r) for r in rows])

    async def delete_dataset(self, dataset_id: str) -> None:
        """Remove a dataset no audit uses (Busy otherwise): marked first, so no audit takes it while its
        files go; its row, then its files. A dataset whose files vanished is still removed from the list."""
        if self._in_use[dataset_id]:
            raise Busy(f"dataset {dataset_id} is used by a queued or running audit")
        if dataset_id in self._deleting:
            raise FileNotFoundError(f"no dataset {dataset_id}")
        self._deleting.add(dataset_id)
        try:
            try:
                path = self.datasets.dataset(dataset_id)
            except FileNotFoundError:
                path = None
            size = await self.store.call(self.store.remove_dataset, dataset_id)
            if size is None and path is None:
                raise FileNotFoundError(f"no dataset {dataset_id}")
            self.datasets.kept -= size or 0
            if path:
                await asyncio.to_thread(shutil.rmtree, path, True)
        finally:
            self._deleting.discard(dataset_id)

    async def DeleteDataset(self, request, context):
        try:
            await self.delete_dataset(request.dataset_id)
        except Busy as e:
            await self.errors.abort(context, e, grpc.StatusCode.FAILED_PRECONDITION)
        except Exception as e:
            await self.errors.abort(context, e)
        return pb.DeleteDatasetResponse()

    # --- audits --------------------------------------------------------------------------------
    def _prepare(self, request: pb.RunAuditRequest, holds: _Holds) -> tuple[ModelFile, Job]:
        """The audit a request asks for, ready to run (in a preparation thread: it lists files, reads the
        sidecar and labels, loads the model); its hold on the model goes to ``holds``."""
        which = request.WhichOneof("images")
        if which is None:
            raise PathError("name the images: data_path (under the data root) or dataset_id (from UploadImages)")
        options = options_from_proto(request.options)
        preprocessing = preprocessing_from_proto(request.preprocessing)
        f = self._model(request.model)
        images = (self.datasets.data_path(request.data_path) if which == "data_path"
                  else self.datasets.dataset(request.dataset_id))
        confine = self.datasets.data_root if which == "data_path" else images
        sources = image_sources(images, confine, by_content=options.target_halfwidth is not None)
        holds.lease = self.catalog.lease(f, audit=True)
        job = Job.prepare(f.path, holds.lease.runner, options, sources, preprocessing=preprocessing,
                          labels=request.labels_csv or None, budget=self.limits.budget)
        return f, job

    async def RunAudit(self, request, context):
        try:  # first of all, before any work and before anything awaits: a full server answers at once,
            place = self.admission.admit()  # and simultaneous requests cannot overbook
        except Full as e:
            await self.errors.abort(context, e, grpc.StatusCode.RESOURCE_EXHAUSTED)
        dataset = request.dataset_id if request.WhichOneof("images") == "dataset_id" else None
        try:
            holds = _Holds(place, self._use_dataset(dataset))
        except FileNotFoundError as e:
            place.leave()
            await self.errors.abort(context, e)
        audit_id = uuid.uuid4().hex
        stop, cancel = threading.Event(), asyncio.Event()
        reported = False
        try:
            try:
                holds.work = asyncio.get_running_loop().run_in_executor(self._preparing, self._prepare, request, holds)
                model, job = await holds.work
            except Exception as e:
                await self.errors.abort(context, e)
            try:
                await self.store.call(self.store.create, audit_id, model.relative)
                self._stops[audit_id] = (stop, cancel)
                about = {"audit_id": audit_id, "model": model.relative, "model_sha256": model.digest}
                self._event("accepted", **about, queue_position=place.position)
                yield pb.RunAuditResponse(accepted=pb.AuditAccepted(audit_id=audit_id,
                                                                    queue_position=place.position))
                if not await place.start(cancel):
                    raise Cancelled("cancelled by CancelAudit while queued")
                self._event("started", **about)
                async for event in self._execute(audit_id, job, stop, holds, about):
                    reported = event.WhichOneof("event") == "report"  # finished and stored: nothing to cancel
                    yield event
            except (asyncio.CancelledError, GeneratorExit):  # the client went away, its deadline expired, or
                # the server stops: gRPC cancels the handler while it awaits, or closes it while it waits to send
                if reported:  # the client closed the call once it had the report, before the stream's end
                    raise
                stop.set()
                state, why = (("interrupted", "the server stopped") if self.shutting_down
                              else ("cancelled", "client cancelled or deadline expired"))
                self.store.post(self.store.finish, audit_id, state, why)
                self._event(state, audit_id=audit_id, error=why)
                raise
            except Exception as e:
                stop.set()
                cancelled = isinstance(e, Cancelled)
                code = grpc.StatusCode.CANCELLED if cancelled else status_of(e)
                message = self.errors.message(e, code)
                self.store.post(self.store.finish, audit_id, "cancelled" if cancelled else "failed", message)
                self._event("cancelled" if cancelled else "failed", audit_id=audit_id, code=code.name, error=message)
                await self.errors.abort(context, e, code)
        finally:
            self._stops.pop(audit_id, None)
            holds.give_back()

    async def _execute(self, audit_id: str, job: Job, stop: threading.Event, holds: _Holds, about: dict):
        """Run the audit in a worker thread, yield its progress, then its report. If this is cancelled,
        the worker is told to stop; what the audit holds is given back once its work has ended."""
        self.store.post(self.store.set_state, audit_id, "running")
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Progress] = asyncio.Queue()

        def work() -> tuple[str, int, float]:  # the report as strict JSON text, serialised here, not on the loop
            report = job.run(lambda p: loop.call_soon_threadsafe(events.put_nowait, p), stop.is_set)
            return json.dumps(report, allow_nan=False), report["frames"], report["seconds"]

        worker = holds.work = loop.run_in_executor(self._audits, work)
        last: Progress | None = None
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)
        try:
            while not worker.done():
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait({worker, getter}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    continue
                p = getter.result()
                self.metrics.progressed(last, p)
                last = p
                yield pb.RunAuditResponse(progress=pb.AuditProgress(
                    images_done=p.images_done, images_total=p.images_total or 0, frames=p.frames,
                    frames_per_second=p.frames / p.seconds if p.seconds else 0.0, elapsed_seconds=p.seconds,
                    frames_total=p.frames_total or 0))
        except (asyncio.CancelledError, GeneratorExit):
            stop.set()  # it stops at its next batch
            raise
        text, frames, seconds = worker.result()
        self._event("finished", **about, frames=frames, seconds=seconds)
        try:
            await self.store.call(self.store.finish, audit_id, "succeeded", report_json=text)
        except StoreError as e:  # the store keeps it and writes it when it can: the client gets its report now
            log.warning("audit %s: its report is not stored yet: %s", audit_id, e)
        yield pb.RunAuditResponse(report=pb.AuditReport(audit_id=audit_id, report_json=text))

    async def GetAudit(self, request, context):
        row = await self._stored(context, self.store.get, request.audit_id)
        if row is None:
            await self.errors.abort(context, LookupError(f"no audit {request.audit_id!r}"), grpc.StatusCode.NOT_FOUND)
        return pb.GetAuditResponse(audit=audit_message(row))

    async def ListAudits(self, request, context):
        if request.page_size < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must not be negative")
        rows = await self._stored(context, self.store.list, request.page_size or 100)
        return pb.ListAuditsResponse(audits=[audit_message(r) for r in rows])

    def _use_dataset(self, dataset_id: str | None) -> Callable[[], None]:
        """Marks the dataset used by an audit (DeleteDataset and retention leave it alone meanwhile);
        returns what unmarks it. A dataset being deleted cannot be used."""
        if not dataset_id:
            return lambda: None
        if dataset_id in self._deleting:
            raise FileNotFoundError(f"no dataset {dataset_id}")
        self._in_use[dataset_id] += 1
        self.store.post(self.store.use_dataset, dataset_id)

        def done() -> None:
            self._in_use[dataset_id] -= 1
            if not self._in_use[dataset_id]:
                del self._in_use[dataset_id]
        return done

    async def DeleteAudit(self, request, context):
        state = await self._stored(context, self.store.delete, request.audit_id)
        if state is None:
            await self.errors.abort(context, LookupError(f"no audit {request.audit_id!r}"), grpc.StatusCode.NOT_FOUND)
        if state in UNFINISHED:
            await self.errors.abort(context, Busy(f"audit {request.audit_id} is {state}: cancel it first"),
                                    grpc.StatusCode.FAILED_PRECONDITION)
        return pb.DeleteAuditResponse()

    async def CancelAudit(self, request, context):
        row = await self._stored(context, self.store.get, request.audit_id)
        if row is None:
            await self.errors.abort(context, LookupError(f"no audit {request.audit_id!r}"), grpc.StatusCode.NOT_FOUND)
        events = self._stops.get(request.audit_id)
        if events is None:
            await self.errors.abort(context, LookupError(f"audit {request.audit_id} is {row.state}, not queued or "
                                                         "running"), grpc.StatusCode.FAILED_PRECONDITION)
        for event in events:
            event.set()
        return pb.CancelAuditResponse(audit=audit_message(row))

    def stop_all(self) -> None:
        """At shutdown, after the grace period: stop every audit still queued or running and store it as
        interrupted (their streams are already cut; their handlers may not get to run again)."""
        for audit_id, (stop, cancel) in list(self._stops.items()):
            stop.set()
            cancel.set()
            self.store.post(self.store.finish, audit_id, "interrupted", "the server stopped")
        self._preparing.shutdown(wait=False, cancel_futures=True)
        self._audits.shutdown(wait=False, cancel_futures=True)

    async def idle(self, timeout: float) -> None:
        """At shutdown: wait (at most ``timeout`` seconds) until no audit is queued or running and no
        upload in progress; nothing else (an open Health.Watch stream) needs the grace period."""
        end = asyncio.get_running_loop().time() + timeout
        while (self.admission.running or self.admission.queued or self._uploads) and \
                asyncio.get_running_loop().time() < end:
            await asyncio.sleep(0.05)

    async def drain(self, timeout: float) -> None:
        """At shutdown, after `stop_all`: wait (at most ``timeout`` seconds) for the audits' work to end
        (each stops at its next batch), so no model closes under an engine call."""
        if self._workers:
            await asyncio.wait(set(self._workers), timeout=timeout)
