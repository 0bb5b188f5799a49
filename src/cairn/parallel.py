"""Run tasks on a few threads: every platform of a level of the family, every resolution of
a lock. One rule for a failure: the others finish, then the first error is raised; Ctrl-C
stops the engines and cancels what has not started."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from cairn import engines


def run_parallel(tasks: list[Callable[[], None]], workers: int) -> None:
    """Run every task; when some fail, wait for the rest and raise the first error."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures: list[Future[None]] = [pool.submit(t) for t in tasks]
        try:
            errors = [f.exception() for f in futures]
        except KeyboardInterrupt:
            for f in futures:
                f.cancel()
            engines.interrupt_all()
            raise
    for e in errors:
        if e is not None:
            raise e
