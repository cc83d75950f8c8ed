"""Bearer-token authentication for the audit service (TLS and mTLS are the server's credentials). The
check itself; `gate.Gate` applies it to every call but health's, before the call holds anything."""
from __future__ import annotations

import hmac
from collections.abc import Sequence


class Unauthenticated(Exception):
    """A call without the server's token."""


class Token:
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def check(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> None:
        """Unauthenticated unless the call's metadata carries 'authorization: Bearer <token>'."""
        given = dict(metadata or ()).get("authorization", "")
        if not hmac.compare_digest(given.encode() if isinstance(given, str) else given, self._expected):
            raise Unauthenticated("missing or wrong bearer token (metadata 'authorization: Bearer <token>')")
