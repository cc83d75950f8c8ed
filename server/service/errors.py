"""How a failure reaches the caller: the status a client can act on (fix the request, name what exists,
or know this node cannot do it), with a one-line message."""
from __future__ import annotations

import grpc

from shiftaudit.server.engine.audit import InputError
from shiftaudit.server.engine.files import PathError
from shiftaudit.server.engine.runners import ModelError

from .datasets import UploadError
from .store import StoreError


def status_of(e: BaseException) -> grpc.StatusCode:
    """Which status a failure gets: what the caller can fix, what is missing, what this node cannot do."""
    if isinstance(e, FileNotFoundError):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(e, (PathError, UploadError, InputError, ValueError)):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(e, ModelError):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(e, StoreError):  # the node's store, not the request: retry later, or elsewhere
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL


async def abort(context: grpc.aio.ServicerContext, e: BaseException) -> None:
    """End the call with ``e``'s status; an unexpected error says it is ours, with its type."""
    code = status_of(e)
    await context.abort(code, str(e) if code != grpc.StatusCode.INTERNAL
                        else f"internal error: {type(e).__name__}: {e}")
