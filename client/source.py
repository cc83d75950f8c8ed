"""Where an audit runs and on which images, as a command line asks for it: in this process, on one server
(uploaded images or a path under its data root), fanned out over several servers, one shard of the images
(a job array's part), or on a Ray cluster. Which of these go together is checked here, once (`check`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shiftaudit.server.engine.errors import InputError
from shiftaudit.server.engine.files import Shard
from shiftaudit.server.engine.options import RayOptions

from .connection import Connection


@dataclass(frozen=True)
class Source:
    images: Path | str | None  # a local directory; a URI (text) only for Ray Data
    servers: tuple[str, ...] = ()
    data_path: str | None = None  # under a server's data root
    shard: Shard | None = None
    ray: RayOptions | None = None
    connection: Connection = Connection()

    @property
    def uri(self) -> bool:
        return isinstance(self.images, str)

    @property
    def resumable(self) -> bool:
        """An audit that can stop with a partial report and continue from it: in process or on one server
        (Ray and a fan-out keep none)."""
        return not self.ray and len(self.servers) < 2

    def check(self) -> None:
        """The one place the rules live: each combination a user can get wrong is one line naming the flags."""
        if self.ray:
            if self.servers or self.shard or self.data_path:
                raise InputError("--ray runs the audit on a Ray cluster: it takes neither --server, --shard nor "
                                 "--data-path")
            if not self.images:
                raise InputError("--ray needs --images DIR_OR_URI")
            return
        if self.uri:
            raise InputError(f"--images {self.images}: a URI is read by Ray Data (add --ray); otherwise give a "
                             "directory")
        if not self.servers:
            if self.data_path or not self.images:
                raise InputError("give --images DIR (--data-path needs --server)")
            return
        if bool(self.images) == bool(self.data_path):
            raise InputError("with --server give either --images DIR (uploaded) or --data-path PATH (on the server)")
        if len(self.servers) > 1 and self.data_path:
            raise InputError("several --server need --images DIR: the client shards the images by content and "
                             "uploads each shard to its server")
        if self.shard and (len(self.servers) > 1 or self.data_path):
            raise InputError("--shard takes --images DIR and one --server at most (several servers shard by "
                             "themselves)")

    def local_images(self, what: str) -> Path:
        """The images, which ``what`` reads here (not a URI)."""
        if self.uri:
            raise InputError(f"--images {self.images}: {what} reads local images; a URI is for --ray audits")
        return self.images
