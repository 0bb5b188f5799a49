"""Critical sections that a polite stop (Ctrl-C, SIGTERM, SIGHUP) waits for.

A commit that is interrupted half-way would leave a store between its old
state and its new one. Inside `stop_deferred()` those signals are only noted;
when the block ends the handlers that were in place run for them, so cairn
still stops, just after the store is whole. SIGKILL cannot be deferred: the
store's own commit order covers it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

_POLITE = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block ends (main thread only: elsewhere
    Python cannot change handlers, and the main thread is the one that would be stopped)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    before = {sig: h for sig in _POLITE if (h := signal.getsignal(sig)) is not None}
    for sig in before:
        signal.signal(sig, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(pending):
            handler = before[signal.Signals(signum)]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)
