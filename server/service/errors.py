"""How a failure reaches the caller: a status it can act on (fix the request, name what exists, retry
later, or know this node cannot do it) and a bounded one-line message that names files by their place
under the server's roots, never by the server's own paths."""
from __future__ import annotations

import errno
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import grpc

from shiftaudit.server.engine.audit import InputError
from shiftaudit.server.engine.budget import OverBudget
from shiftaudit.server.engine.files import PathError
from shiftaudit.server.engine.runners import EngineOutOfMemory, ModelError

from . import logs
from .admission import Full
from .auth import Unauthenticated
from .store import StoreError

MAX_MESSAGE = 1000  # characters: status details travel in a trailer that clients cap at 16 KiB
QUOTED = 80  # characters of a quoted input a message echoes (a 20 kB name stays readable, and small)
_LONG_QUOTE = re.compile(r"""(?<!\w)(['"])([^'"]{%d,})\1(?!\w)""" % (QUOTED + 1))  # quoted, not an apostrophe
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
DISK_FAILING = {errno.EIO, errno.EROFS}  # the node's disk, not the request: retry later, or elsewhere
T = TypeVar("T")


class NotFound(LookupError):
    """No audit by the id the request names (a missing dataset or file is a FileNotFoundError)."""


class Conflict(Exception):
    """The request does not fit the state of what it names: a dataset or an audit in use cannot be
    removed, a finished audit cannot be cancelled. The caller can act (cancel, wait), then retry."""


def status_of(e: BaseException) -> grpc.StatusCode:
    """What the caller can fix, what is missing, what to retry later, what this node cannot do."""
    if isinstance(e, (FileNotFoundError, NotFound)):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(e, Conflict):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(e, Unauthenticated):
        return grpc.StatusCode.UNAUTHENTICATED
    if isinstance(e, OSError) and e.errno in NO_SPACE:
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(e, OSError) and e.errno in DISK_FAILING:
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(e, OSError) and e.errno == errno.ENAMETOOLONG:
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(e, (PathError, InputError, ValueError)):  # an UploadError too
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(e, (EngineOutOfMemory, OverBudget, Full)):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(e, ModelError):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(e, StoreError):  # the node's store, not the request: retry later, or elsewhere
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL


class Errors:
    """``roots``: the server's directories and how a message names them (``<model root>`` ...)."""

    def __init__(self, roots: Mapping[Path | None, str], on_error: Callable[[str], None] = lambda code: None) -> None:
        """``on_error`` is told the status name of every error answered (the metrics count them)."""
        self._on_error = on_error
        # absolute paths only, matched as whole path components, the longest first (nested roots)
        paths = sorted({str(root.resolve()): label for root, label in roots.items() if root is not None}.items(),
                       key=lambda p: -len(p[0]))
        self._roots = [(re.compile(re.escape(path) + r"(?=/|\b|$)"), label) for path, label in paths]

    def message(self, e: BaseException, code: grpc.StatusCode) -> str:
        if isinstance(e, OSError) and e.strerror:
            text = e.strerror + (f": {e.filename}" if e.filename else "")
            if e.errno in NO_SPACE:
                text = f"no space left for it on the server ({text})"
        else:
            text = str(e) or type(e).__name__
        if code == grpc.StatusCode.INTERNAL:
            text = f"internal error: {type(e).__name__}: {text}"
        for path, label in self._roots:
            text = path.sub(label, text)
        text = _LONG_QUOTE.sub(lambda m: f"{m[1]}{m[2][:QUOTED]}…{m[1]}", " ".join(text.split()))
        return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"

    async def abort(self, context: grpc.aio.ServicerContext, e: BaseException,
                    code: grpc.StatusCode | None = None, level: int = logging.INFO) -> NoReturn:
        """End the call with ``e``'s status (or ``code``) and its message, logged at ``level``."""
        code = code or status_of(e)
        message = self.message(e, code)
        logs.event("error", level=level, code=code.name, error=message)
        self._on_error(code.name)
        await context.abort(code, message)


def answers(handler: Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[T]]) \
        -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[T]]:
    """A handler whose exception ends its call with the status and message `status_of` and
    `Errors.message` give it (through its servicer's ``errors``): the one place a handler's failure is
    mapped, so that every handler answers alike. A call already ended (`context.abort`) stays so."""
    @functools.wraps(handler)
    async def answer(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            return await handler(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as e:
            await self.errors.abort(context, e)
    return answer
