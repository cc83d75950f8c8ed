"""The server's state directory (the audit store, uploads), held by one server at a time.

A second server on the same directory (a rolling deploy on a shared volume) would mark the first
one's running audits interrupted and drop their results: it refuses to start instead, naming the
holder. The lock is a POSIX record lock on ``state.lock`` (it also works on NFS), released by the
kernel when the holder exits, however it exits.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from pathlib import Path


class StateDirInUse(RuntimeError):
    """Another server holds the state directory."""


class StateDir:
    def __init__(self, path: Path) -> None:
        (path / "uploads").mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = (path / "state.lock").open("a+")
        try:
            fcntl.lockf(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN):  # no lock could be taken at all (NFS without locks)
                self._file.close()
                raise StateDirInUse(f"cannot lock state directory {path}: {e.strerror}") from None
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise StateDirInUse(f"state directory {path} is in use by {holder}; give each server its own "
                                "--state-dir") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"audit-server pid {os.getpid()} on {socket.gethostname()} since "
                         f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
        self._file.flush()

    @property
    def database(self) -> Path:
        return self.path / "audits.sqlite"

    @property
    def uploads(self) -> Path:
        return self.path / "uploads"

    def close(self) -> None:
        self._file.close()  # releases the lock
