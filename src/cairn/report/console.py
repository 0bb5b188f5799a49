"""Logging and progress: rich on a terminal, plain lines in CI logs."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress as RichProgress
from rich.progress import SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

stderr = Console(stderr=True, emoji=False)


def interactive() -> bool:
    return stderr.is_terminal and not stderr.is_dumb_terminal


def setup_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    handler: logging.Handler
    if interactive():
        handler = RichHandler(console=stderr, show_path=False, show_time=False, markup=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("cairn")
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


class PlainProgress:
    """One line per step, timestamped from the start: readable in CI logs."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def _line(self, text: str) -> None:
        print(f"[{time.monotonic() - self._t0:6.1f}s] {text}", file=sys.stderr, flush=True)

    def step(self, job: str, text: str) -> None:
        self._line(f"{job}: {text}")

    def done(self, job: str, seconds: float) -> None:
        self._line(f"{job}: built in {seconds:.1f}s")

    def kept(self, job: str) -> None:
        self._line(f"{job}: unchanged, kept")

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class LiveProgress:
    """A spinner per job on a terminal."""

    def __init__(self) -> None:
        self._bar = RichProgress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[job]}[/bold]"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=stderr,
        )
        self._tasks: dict[str, TaskID] = {}

    def step(self, job: str, text: str) -> None:
        if job not in self._tasks:
            self._tasks[job] = self._bar.add_task(text, job=job, total=None)
        else:
            self._bar.update(self._tasks[job], description=text)

    def done(self, job: str, seconds: float) -> None:
        self._bar.update(
            self._tasks[job], description=f"built in {seconds:.1f}s", total=1, completed=1
        )

    def kept(self, job: str) -> None:
        self.step(job, "unchanged, kept")
        self._bar.update(self._tasks[job], total=1, completed=1)

    def __enter__(self) -> LiveProgress:
        self._bar.__enter__()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.__exit__(t, e, tb)


def progress(quiet: bool) -> PlainProgress | LiveProgress:
    return LiveProgress() if interactive() and not quiet else PlainProgress()
