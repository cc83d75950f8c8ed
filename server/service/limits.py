"""The server's limits, defined once: each field carries its `Option`, from which ``audit-server``'s
flags are derived (`shiftaudit.server.flags`), and `ServerLimits` itself refuses values out of range,
naming the fields (a command line writes them as its flags). A request over a limit is refused naming
the limit by its field name: a gRPC caller never typed the server's flags."""
from __future__ import annotations

from dataclasses import dataclass

from shiftaudit.server.engine.budget import MemoryBudget
from shiftaudit.server.engine.errors import OptionError, named
from shiftaudit.server.engine.options import named_options, option

OPTIONS = "options"  # listed with audit-server's own flags, under argparse's "options"
KEPT = "what the node keeps (an upload over a limit is refused with RESOURCE_EXHAUSTED)"
MEMORY = "memory (a request over a limit is refused with RESOURCE_EXHAUSTED, naming it)"


@named_options
@dataclass(frozen=True)
class ServerLimits:
    """What one node takes on: audits at once and waiting, what it keeps on disk, what an audit may hold
    in memory, calls in progress, and the grace audits get at shutdown."""

    max_concurrent_audits: int = option(1, "audits that run at once, each on a thread of its own", parse=int,
                                        group=OPTIONS)
    max_queued_audits: int = option(8, "audits that may wait for one to end; more are refused at once", parse=int,
                                    group=OPTIONS)
    max_upload_bytes: int = option(2 << 30, "bytes of one upload", parse=int, group=KEPT)
    max_upload_files: int = option(100_000, "files of one upload", parse=int, group=KEPT)
    max_state_bytes: int = option(50 << 30, "bytes of reports and uploads the node keeps; an upload that would go "
                                  "over is refused", parse=int, group=KEPT)
    retain_days: float = option(30.0, "finished audits and datasets unused for this long are removed; 0 keeps them "
                                "until DeleteAudit/DeleteDataset", parse=float, group=KEPT)
    max_batch: int = option(128, "frames per engine call an audit may ask for: the engine's activations grow with it",
                            parse=int, group=MEMORY)
    max_audit_memory_mb: int = option(1024, "everything one audit may hold: its batches in flight, the engine's "
                                      "activations (ONNX Runtime on the CPU) and its images; a request whose batches "
                                      "and activations leave no room for images is refused, an image that would not "
                                      "fit is skipped", parse=int, group=MEMORY)
    max_loaded_models: int = option(4, "models kept open; opening another closes the least recently used one no "
                                    "audit holds", parse=int, group=MEMORY)
    max_concurrent_rpcs: int | None = option(None, "calls of the service in progress at once, streams included (not "
                                             "health's); more are refused with RESOURCE_EXHAUSTED", parse=int,
                                             group=OPTIONS, default_text="no limit")
    max_health_watches: int = option(8, "health Watch streams one client host may hold open; more are refused "
                                     "with RESOURCE_EXHAUSTED (health's Check never is)", parse=int, group=OPTIONS)
    grace: float = option(30.0, "seconds running audits get at shutdown", parse=float, group=OPTIONS)

    def __post_init__(self) -> None:
        self._at_least(1, "max_batch", "max_audit_memory_mb")
        self._at_least(1, "max_concurrent_audits")
        self._at_least(0, "max_queued_audits")
        self._at_least(1, "max_upload_bytes", "max_upload_files", "max_state_bytes")
        self._at_least(0, "grace", "retain_days")
        if self.max_concurrent_rpcs is not None:
            self._at_least(1, "max_concurrent_rpcs")
        self._at_least(1, "max_loaded_models", "max_health_watches")

    def _at_least(self, bound: int, *names: str) -> None:
        """OptionError naming ``names`` unless each is ``bound`` or more (NaN is not)."""
        if all(getattr(self, name) >= bound for name in names):
            return
        marked = [named(name) for name in names]
        listed = marked[0] if len(marked) == 1 else f"{', '.join(marked[:-1])} and {marked[-1]}"
        raise OptionError(f"{listed} must be >= {bound}")

    @property
    def budget(self) -> MemoryBudget:
        """What one audit may hold, as the engine checks it (`budget.MemoryBudget`)."""
        return MemoryBudget(self.max_audit_memory_mb << 20, self.max_batch)
