"""shiftaudit's clients: `audit` runs an audit in this process; `shiftaudit.client.remote.AuditClient`
talks to an audit-server. ``audit`` is imported on first use, so that ``import
shiftaudit.client.remote`` (a pipeline's gRPC client) loads nothing of the engine: no OpenCV, no ONNX
Runtime, no runner. The errors an audit raises are exported here (`AuditError` and its kinds); a
remote call's is `shiftaudit.client.remote.RemoteError`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shiftaudit.server.engine.errors import AuditError, Cancelled, DeviceError, InputError, ModelError, OptionError
from shiftaudit.server.engine.options import AuditOptions

if TYPE_CHECKING:
    from .api import audit

__all__ = ["AuditError", "AuditOptions", "Cancelled", "DeviceError", "InputError", "ModelError", "OptionError", "audit"]


def __getattr__(name: str) -> Any:
    if name == "audit":
        from .api import audit

        return audit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
