"""How to reach a server (`Connection`) and how its refusals read (`RemoteError`): light (no gRPC), so that a
command's help, and a command that never connects, need none; `Connection.connect` brings the client
(`remote`) in."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shiftaudit.server.engine.errors import InputError, named
from shiftaudit.server.engine.options import named_options, option

if TYPE_CHECKING:
    import grpc

    from .remote import AuditClient


class RemoteError(RuntimeError):
    """The server answered with an error status; ``code`` is the grpc.StatusCode."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code, self.details = code, message


GROUP = "remote audit (without --server the audit runs in this process)"


@named_options
@dataclass(frozen=True)
class Connection:
    """How to reach a server: a bearer token and TLS files (each read when connecting, an error naming the
    option that named it), and how long a remote audit may take."""

    token_file: Path | None = option(None, "bearer token for the server", parse=Path, group=GROUP, default_text="none")
    tls_ca: Path | None = option(None, "CA certificate to verify the server (enables TLS)", parse=Path, group=GROUP,
                                 default_text="the server is not verified: plaintext")
    tls_cert: Path | None = option(None, "client certificate, for servers that require one", parse=Path, group=GROUP,
                                   default_text="none")
    tls_key: Path | None = option(None, "client private key", parse=Path, group=GROUP, default_text="none")
    timeout: float | None = option(None, "deadline of the remote audit, seconds", parse=float, group=GROUP,
                                   default_text="none")

    def connect(self, target: str) -> AuditClient:
        from .remote import AuditClient

        token = read_text(self.token_file, "token_file").strip() if self.token_file else None
        for path, name in ((self.tls_ca, "tls_ca"), (self.tls_cert, "tls_cert"), (self.tls_key, "tls_key")):
            if path:
                read_text(path, name)
        return AuditClient(target, token=token, tls_ca=self.tls_ca, tls_cert=self.tls_cert, tls_key=self.tls_key)


def read_text(path: Path, name: str) -> str:
    """A file an option (``name``) names, or an error naming the option."""
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise InputError(f"{named(name)} {path}: not a text file (UTF-8)") from None
    except OSError as e:
        raise InputError(f"{named(name)} {path}: {e.strerror}") from None
