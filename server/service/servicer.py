"""The gRPC AuditService (grpc.aio): the handlers, and only they. What outlives a call is kept by its
registry: datasets (`datasets.py`), audits running and queued (`audits.py`), models (`catalog.py`);
every handler's failure is answered by one mapping (`errors.answers`). Audits run in worker threads,
never on the event loop. The RunAudit stream owns its audit: a client that cancels, or a deadline that
expires, stops the audit's work at the next batch.
"""
from __future__ import annotations

import asyncio
import json
import logging
import platform
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc

from shiftaudit.server.engine.errors import InputError
from shiftaudit.server.engine.files import PathError, image_files, inside
from shiftaudit.server.engine.images import image_sources
from shiftaudit.server.engine.job import Job, package_version
from shiftaudit.server.engine.pipeline import Cancelled
from shiftaudit.server.engine.preprocessing import load_preprocessing
from shiftaudit.server.engine.progress import Progress
from shiftaudit.server.engine.render import gpu_renderer
from shiftaudit.server.engine.resume import check_files, partial_report
from shiftaudit.server.engine.runners.tensorrt import tensorrt_version
from shiftaudit.server.wire import options_from_proto, preprocessing_from_proto
from shiftaudit.v1 import audit_service_pb2 as pb
from shiftaudit.v1 import audit_service_pb2_grpc as pb_grpc

from . import logs
from .admission import Full
from .audits import Audits, Holds
from .catalog import ModelCatalog, ModelFile
from .datasets import Datasets
from .errors import Conflict, Errors, NotFound, answers, status_of
from .limits import ServerLimits
from .messages import audit_message, dataset_message
from .metrics import Metrics
from .store import UNFINISHED, AuditStore, StoredReport, StoreError

log = logging.getLogger("shiftaudit.server")


class AuditService(pb_grpc.AuditServiceServicer):
    """Each handler turns its request into a call on a registry and the result into its response."""

    def __init__(self, catalog: ModelCatalog, datasets: Datasets, audits: Audits, store: AuditStore,
                 limits: ServerLimits) -> None:
        self.catalog, self.datasets, self.audits, self.store, self.limits = catalog, datasets, audits, store, limits
        self.metrics = Metrics(audits.admission)
        self.errors = Errors({catalog.root: "<model root>", datasets.data_root: "<data root>",
                              store.path.parent: "<state dir>"},
                             on_error=lambda code: self.metrics.errors.labels(code).inc())

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

    def _model_info(self, f: ModelFile) -> pb.ModelInfo:
        return pb.ModelInfo(path=f.relative, digest=f.digest, size_bytes=f.size, loaded=self.catalog.loaded(f))

    # --- server and models ---------------------------------------------------------------------
    @answers
    async def GetServerInfo(self, request, context):
        import onnxruntime as ort

        render, gpu = gpu_renderer()
        limits = self.limits
        return pb.GetServerInfoResponse(
            version=package_version("shiftaudit") or "", onnxruntime_version=ort.__version__,
            tensorrt_version=tensorrt_version() or "",
            cuda_version=render.memory.launch.nvrtc if render else "",
            driver_version=render.memory.launch.driver_version if render else "",
            devices=[f"cpu ({platform.machine()})"] + ([gpu] if render else []),
            execution_providers=ort.get_available_providers(),
            max_concurrent_audits=limits.max_concurrent_audits, max_queued_audits=limits.max_queued_audits,
            max_upload_bytes=limits.max_upload_bytes, max_upload_files=limits.max_upload_files,
            max_state_bytes=limits.max_state_bytes, state_bytes=await self.store.call(self.store.state_bytes),
            retain_days=limits.retain_days)

    @answers
    async def ListModels(self, request, context):
        files = await asyncio.to_thread(self.catalog.files)
        return pb.ListModelsResponse(models=[self._model_info(f) for f in files])

    @answers
    async def LoadModel(self, request, context):
        f = await asyncio.to_thread(self._model, request.model)
        await asyncio.to_thread(self.catalog.load, f)
        return pb.LoadModelResponse(model=self._model_info(f))

    @answers
    async def UnloadModel(self, request, context):
        f = await asyncio.to_thread(self._model, request.model)
        return pb.UnloadModelResponse(unloaded=await asyncio.to_thread(self.catalog.unload, f))

    @answers
    async def GetModelMetadata(self, request, context):
        def describe(f: ModelFile) -> tuple:
            pre = load_preprocessing(f.path)
            lease = self.catalog.lease(f)
            try:
                return pre, lease.runner.io_tensors(), lease.runner.input_spec().layout, lease.runner.name
            finally:
                lease.release()

        f = await asyncio.to_thread(self._model, request.model)
        pre, io, layout, name = await asyncio.to_thread(describe, f)
        tensors = {kind: [pb.TensorInfo(name=t["name"], shape=t["shape"], dtype=t["dtype"]) for t in io[kind]]
                   for kind in ("inputs", "outputs")}
        return pb.GetModelMetadataResponse(model=self._model_info(f), runner=name, layout=layout,
                                           preprocessing_json=json.dumps(pre.to_json()), **tensors)

    # --- images --------------------------------------------------------------------------------
    @answers
    async def UploadImages(self, request_iterator, context):
        async def chunks() -> AsyncIterator[tuple[str, bytes]]:
            async for msg in request_iterator:
                yield msg.file_name, msg.data

        self.store.writable()
        dataset_id, files, size = await self.datasets.upload(chunks())
        return pb.UploadImagesResponse(dataset_id=dataset_id, files=files, bytes=size)

    @answers
    async def ListDatasets(self, request, context):
        rows = await self.store.call(self.store.datasets)
        return pb.ListDatasetsResponse(datasets=[dataset_message(r) for r in rows])

    @answers
    async def DeleteDataset(self, request, context):
        await self.datasets.delete(request.dataset_id)
        return pb.DeleteDatasetResponse()

    # --- audits --------------------------------------------------------------------------------
    def _prepare(self, request: pb.RunAuditRequest, holds: Holds) -> tuple[ModelFile, Job]:
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
        partial = None
        if request.resume_json:
            try:
                partial = partial_report(json.loads(request.resume_json))
            except json.JSONDecodeError as e:
                raise InputError(f"resume_json: not JSON ({e})") from None
            root = confine.resolve()  # as the audit reads them: a file leading outside the root is not hashed
            check_files(partial, [(name, file) for name, file in image_files(images) if inside(root, file)])
        holds.lease = self.catalog.lease(f, audit=True)
        job = Job.prepare(f.path, holds.lease.runner, options, sources, preprocessing=preprocessing,
                          labels=request.labels_csv or None, budget=self.limits.budget, resume=partial)
        return f, job

    async def _reserve(self, job: Job, holds: Holds) -> None:
        """Room for the audit's report under the state's cap, at its upper bound, until it is stored
        (OverBudget when it might not fit): the cap holds for reports too."""
        bound = job.report_bytes_bound()
        database = await self.store.call(self.store.database_bytes)
        self.datasets.room.take(bound, database, f"this audit's report (up to {bound} bytes)")
        holds.reserved = (self.datasets.room, bound)

    async def RunAudit(self, request, context):
        """The audit's stream: accepted, progress, its report. Its errors end it here, not in `answers`: an
        audit that fails or is cut short is stored and logged as such first."""
        try:  # first of all, before any work and before anything awaits: a full server, or one whose store is
            self.store.writable()  # failing, answers at once, and simultaneous requests cannot overbook
            place = self.audits.admission.admit()
        except (Full, StoreError) as e:
            await self.errors.abort(context, e)
        dataset = request.dataset_id if request.WhichOneof("images") == "dataset_id" else None
        try:
            holds = Holds(place, self.datasets.acquire(dataset))
        except FileNotFoundError as e:
            place.leave()
            await self.errors.abort(context, e)
        audit_id = uuid.uuid4().hex
        stop, cancel = threading.Event(), asyncio.Event()
        reported = False
        try:
            try:
                holds.work = self.audits.prepare(self._prepare, request, holds)
                # shielded: a deadline or a client gone cancels this await, never the preparation's future,
                # which stays pending until its thread returns; `give_back` then releases the lease it took
                model, job = await asyncio.shield(holds.work)
                job = replace(job, audit_id=audit_id)  # its report names it
                await self._reserve(job, holds)
            except Exception as e:
                await self.errors.abort(context, e)
            try:
                await self.store.call(self.store.create, audit_id, model.relative)
                self.audits.track(audit_id, stop, cancel)
                about = {"audit_id": audit_id, "model": model.relative, "model_sha256": model.digest}
                self._event("accepted", **about, queue_position=place.position)
                yield pb.RunAuditResponse(accepted=pb.AuditAccepted(audit_id=audit_id,
                                                                    queue_position=place.position))
                if not await place.start(cancel):
                    raise Cancelled("cancelled by CancelAudit while queued")
                self._event("started", **about)
                async for event in self._execute(audit_id, job, stop, holds, about, request.partial_report):
                    reported = event.WhichOneof("event") == "report"  # finished and stored: nothing to cancel
                    yield event
            except (asyncio.CancelledError, GeneratorExit):  # the client went away, its deadline expired, or
                # the server stops: gRPC cancels the handler while it awaits, or closes it while it waits to send
                if reported:  # the client closed the call once it had the report, before the stream's end
                    raise
                stop.set()
                state, why = (("interrupted", "the server stopped") if self.audits.shutting_down
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
            self.audits.untrack(audit_id)
            holds.give_back()

    async def _execute(self, audit_id: str, job: Job, stop: threading.Event, holds: Holds, about: dict,
                       partial: bool) -> AsyncIterator[pb.RunAuditResponse]:
        """Run the audit in a worker thread, yield its progress, then its report (stopped by CancelAudit:
        its partial report when the client asked for one, ``partial``, else Cancelled). If this is cancelled,
        the worker is told to stop; what the audit holds is given back once its work has ended."""
        self.store.post(self.store.set_state, audit_id, "running")
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Progress] = asyncio.Queue()

        def work() -> tuple[StoredReport, dict]:  # the report as strict JSON text, serialised here, not on the loop
            report = job.run(lambda p: loop.call_soon_threadsafe(events.put_nowait, p), stop.is_set)
            return StoredReport.of(report, json.dumps(report, allow_nan=False)), report

        worker = holds.work = self.audits.work(work)
        worker.add_done_callback(lambda w: self._keep_partial(audit_id, w))
        last: Progress | None = None
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
        stored, report = worker.result()
        state = "succeeded"
        if report.get("interrupted"):  # CancelAudit (or the shutdown) stopped it: its partial report, stored so
            state = "interrupted" if self.audits.shutting_down else "cancelled"
            if not partial:  # a client made before partial reports expects CANCELLED (the report is kept)
                self.store.post(self.store.finish, audit_id, state, "stopped: a partial report", stored)
                raise Cancelled("cancelled by CancelAudit; its partial report is kept for GetAudit")
            self._event(state, audit_id=audit_id, error="stopped with a partial report",
                        images_left=report["interrupted"]["images_left"])
        else:
            self._event("finished", **about, frames=report["frames"], seconds=report["seconds"])
        not_stored = ""
        try:
            await self.store.call(self.store.finish, audit_id, state,
                                  "" if state == "succeeded" else "stopped: a partial report", stored)
        except StoreError as e:  # the store keeps it and writes it when it can; the client gets it now, told so
            not_stored = self.errors.message(e, grpc.StatusCode.UNAVAILABLE)
            logs.event("not_stored", level=logging.WARNING, audit_id=audit_id, error=not_stored)
        yield pb.RunAuditResponse(report=pb.AuditReport(audit_id=audit_id, report_json=stored.text,
                                                        not_stored=not_stored))

    def _keep_partial(self, audit_id: str, worker: asyncio.Future) -> None:
        """An audit's work that ended with a partial report after its handler had stored it as cut short (a
        client gone, the server stopping): the report is kept with it, for GetAudit and a resume."""
        if worker.cancelled() or worker.exception() is not None:
            return
        stored, report = worker.result()
        if report.get("interrupted"):
            self.store.post(self.store.keep_partial, audit_id, stored)

    @answers
    async def GetAudit(self, request, context):
        row = await self.store.call(self.store.get, request.audit_id)
        if row is None:
            raise NotFound(f"no audit {request.audit_id!r}")
        return pb.GetAuditResponse(audit=audit_message(row))

    @answers
    async def ListAudits(self, request, context):
        if request.page_size < 0:
            raise ValueError("page_size must not be negative")
        rows = await self.store.call(self.store.list, request.page_size or 100)
        return pb.ListAuditsResponse(audits=[audit_message(r) for r in rows])

    @answers
    async def DeleteAudit(self, request, context):
        state = await self.store.call(self.store.delete, request.audit_id)
        if state is None:
            raise NotFound(f"no audit {request.audit_id!r}")
        if state in UNFINISHED:
            raise Conflict(f"audit {request.audit_id} is {state}: cancel it first")
        return pb.DeleteAuditResponse()

    @answers
    async def CancelAudit(self, request, context):
        return pb.CancelAuditResponse(audit=audit_message(await self.audits.cancel(request.audit_id)))
