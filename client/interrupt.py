"""Ctrl-C (SIGINT) or SIGTERM during an audit: a state, not an error. The first signal asks the audit to
stop after the batch in flight (a server's audit is cancelled, and answers with its partial report); the
audit then ends with a partial report of the images finished, which the command writes wherever the full
one would have gone and ``--resume`` continues. A second signal exits at once."""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType

EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention for a run stopped by Ctrl-C
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interruption:
    """While entered (in the main thread), SIGINT and SIGTERM stop the run instead of killing it.
    ``is_set`` is the audit's ``should_stop``; `when_stopped` registers what else must hear of it (a
    server's CancelAudit), run on a thread of its own, never in the signal handler."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._callbacks: list[Callable[[], object]] = []
        self._lock = threading.Lock()
        self._before: dict[int, object] = {}

    def is_set(self) -> bool:
        return self.event.is_set()

    def when_stopped(self, callback: Callable[[], object]) -> None:
        """``callback`` once the run is asked to stop (at once, if it was already)."""
        with self._lock:
            if not self.event.is_set():
                self._callbacks.append(callback)
                return
        threading.Thread(target=callback, daemon=True).start()

    def __enter__(self) -> Interruption:
        if threading.current_thread() is threading.main_thread():
            self._before = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        for s, handler in self._before.items():
            signal.signal(s, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            print("\naudit-client: interrupted again: quitting at once, nothing written", file=sys.stderr, flush=True)
            os._exit(EXIT_INTERRUPTED)
        print(f"\naudit-client: {signal.Signals(signum).name}: stopping after the batch in flight and writing the "
              "images finished as a partial report (again to quit at once)", file=sys.stderr, flush=True)
        with self._lock:
            self.event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            threading.Thread(target=callback, daemon=True).start()
