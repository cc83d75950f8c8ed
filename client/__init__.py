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
    from shiftaudit.server.engine.layers import LayerOptions
    from shiftaudit.server.engine.options import RayOptions
    from shiftaudit.server.engine.remediate import remediate
    from shiftaudit.server.engine.remedy import RemedyOptions
    from shiftaudit.server.engine.runners import EngineOptions

    from .api import audit, audit_on_ray, compare, profile

__all__ = ["AuditError", "AuditOptions", "Cancelled", "DeviceError", "EngineOptions", "InputError", "LayerOptions",
           "ModelError", "OptionError", "RayOptions", "RemedyOptions", "audit", "audit_on_ray", "compare", "profile",
           "remediate"]
_LAZY = {"audit": ".api", "audit_on_ray": ".api", "compare": ".api", "profile": ".api",
         "EngineOptions": "shiftaudit.server.engine.runners", "LayerOptions": "shiftaudit.server.engine.layers",
         "RayOptions": "shiftaudit.server.engine.options", "remediate": "shiftaudit.server.engine.remediate",
         "RemedyOptions": "shiftaudit.server.engine.remedy"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
