"""What every call passes before its handler runs, in this order:

1. its request must decode: gRPC itself would answer a malformed message UNKNOWN ("Unexpected <class
   DecodeError>") and log a traceback per call, so any client could flood the log; here it is answered
   INVALID_ARGUMENT with one warning line;
2. its token (when the server has one), for every call but health's: a call without it is refused
   before it holds a place;
3. a place among the calls in progress: the service's calls (streams included) share
   ``max_concurrent_rpcs``; health's `Watch` streams are bounded per client host by
   ``max_health_watches`` and take no place of the service's; health's `Check` is never refused.

gRPC's own ``maximum_concurrent_rpcs`` is not used: it counts every call, health's and anonymous ones
included, before any check, so eight anonymous `Watch` streams refused every authenticated call.
"""
from __future__ import annotations

import inspect
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from .admission import Full
from .auth import Token, Unauthenticated
from .errors import Errors

HEALTH = "/grpc.health.v1.Health/"
WATCH = HEALTH + "Watch"
KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class Malformed(ValueError):
    """A request message that does not decode; it stands in for the request, so that the call is
    answered here instead of by gRPC."""


class Gate(grpc.aio.ServerInterceptor):
    def __init__(self, errors: Errors, token: Token | None, max_calls: int | None, max_watches: int) -> None:
        self.errors, self.token, self.max_calls, self.max_watches = errors, token, max_calls, max_watches
        self.calls = 0  # the service's calls in progress
        self.watches: Counter[str] = Counter()  # open health Watch streams per client host

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None:  # no such method: gRPC answers UNIMPLEMENTED
            return None
        method = details.method
        refused: Exception | None = None
        if self.token and not method.startswith(HEALTH):
            try:
                self.token.check(details.invocation_metadata)
            except Unauthenticated as e:
                refused = e
        place = self._watch if method == WATCH else None if method.startswith(HEALTH) else self._call
        return _guarded(handler, self, refused, place)

    def _call(self, context: grpc.aio.ServicerContext) -> Callable[[], None]:
        """A place among the service's calls in progress (Full when none is left); what gives it back."""
        if self.max_calls is not None and self.calls >= self.max_calls:
            raise Full(f"{self.calls} calls are in progress, this server's max_concurrent_rpcs; retry later")
        self.calls += 1

        def leave() -> None:
            self.calls -= 1
        return leave

    def _watch(self, context: grpc.aio.ServicerContext) -> Callable[[], None]:
        """A place among the Watch streams of the caller's host (Full when it holds max_health_watches)."""
        host = _host(context.peer())
        if self.watches[host] >= self.max_watches:
            raise Full(f"{self.watches[host]} health Watch streams are open from this host, this server's "
                       "max_health_watches; close one, or use Check")
        self.watches[host] += 1

        def leave() -> None:
            self.watches[host] -= 1
            if not self.watches[host]:
                del self.watches[host]
        return leave

    async def enter(self, request: Any, context: grpc.aio.ServicerContext, refused: Exception | None,
                    place: Callable[[grpc.aio.ServicerContext], Callable[[], None]] | None) -> Callable[[], None]:
        """The checks, in order, for a call whose (first) request is ``request``; aborts the call with the
        first that fails, else returns what gives its place back."""
        try:
            if refused:
                raise refused
            if isinstance(request, Malformed):
                raise request
            return place(context) if place else _nothing
        except (Unauthenticated, Malformed, Full) as e:
            await self.errors.abort(context, e, level=logging.WARNING if isinstance(e, Malformed) else logging.INFO)

    async def checked(self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """A request stream whose malformed message ends the call."""
        async for request in requests:
            if isinstance(request, Malformed):
                await self.errors.abort(context, request, level=logging.WARNING)
            yield request


def _nothing() -> None:
    return None


def _host(peer: str) -> str:
    """The client's host in gRPC's peer string ('ipv4:127.0.0.1:5000', 'ipv6:%5B::1%5D:5000', 'unix:...')."""
    kind, _, address = peer.partition(":")
    return peer if kind not in ("ipv4", "ipv6") else address.rpartition(":")[0]


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserialize`` returning a `Malformed` instead of raising."""
    if deserialize is None:
        return None

    def tolerant(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as e:  # protobuf's DecodeError, or whatever a deserializer raises
            return Malformed(f"malformed request: {e}")
    return tolerant


def _guarded(handler: grpc.RpcMethodHandler, gate: Gate, refused: Exception | None,
             place: Callable[[grpc.aio.ServicerContext], Callable[[], None]] | None) -> grpc.RpcMethodHandler:
    """``handler`` behind the gate: same kind, same serializers, a tolerant deserializer."""
    kind = next(k for k in KINDS if getattr(handler, k))
    behaviour = getattr(handler, kind)
    streams_in = kind.startswith("stream")

    async def begin(request: Any, context: grpc.aio.ServicerContext) -> tuple[Any, Callable[[], None]]:
        if streams_in:  # the stream's messages are checked as they come; the gate looks at none of them
            return gate.checked(request, context), await gate.enter(None, context, refused, place)
        return request, await gate.enter(request, context, refused, place)

    if inspect.isasyncgenfunction(behaviour):
        async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            request, leave = await begin(request, context)
            try:
                async for response in behaviour(request, context):
                    yield response
            finally:
                leave()
    else:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            request, leave = await begin(request, context)
            try:
                result = behaviour(request, context)
                return await result if inspect.isawaitable(result) else result
            finally:
                leave()
    make = getattr(grpc, f"{kind}_rpc_method_handler")
    return make(run, request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer)
