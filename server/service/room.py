"""The room a node's ``max_state_bytes`` leaves: what it keeps — the database, reports included
(`AuditStore.database_bytes`), and the uploaded datasets — and what it has promised to keep: uploads in
progress, and the report of every audit admitted, reserved at its upper bound (`report_size`) until it
is stored. Anything that would take the node over its cap is refused before it is written, naming the
limit; deleting gives the room back at once."""
from __future__ import annotations

from shiftaudit.server.engine.budget import OverBudget


class Room:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = 0  # bytes of the datasets the store accounts for
        self.promised = 0  # bytes of uploads in progress and of reports not yet stored

    def take(self, size: int, database: int, what: str) -> None:
        """Promise ``size`` more bytes (``database``: what the database holds now), or OverBudget naming
        ``what`` would not fit."""
        kept = database + self.kept
        if kept + self.promised + size > self.limit:
            also = f" and {self.promised} more promised to uploads and audits in progress" if self.promised else ""
            raise OverBudget(f"the server keeps {kept} bytes of reports and uploads{also}; {what} would take it "
                             f"over its max_state_bytes of {self.limit}: delete audits (DeleteAudit) or datasets "
                             "(DeleteDataset) first")
        self.promised += size

    def give_back(self, size: int) -> None:
        """A promise not kept (a cut upload) or kept elsewhere (a report, stored in the database)."""
        self.promised -= size

    def keep(self, size: int) -> None:
        """A promised upload is a dataset now."""
        self.promised -= size
        self.kept += size

    def free(self, size: int) -> None:
        """A dataset was deleted."""
        self.kept -= size
