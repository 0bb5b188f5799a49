"""The typer application every command registers with, and how cairn stops on a signal."""

from __future__ import annotations

import signal
from typing import Annotated

import typer
import typer.core

from cairn import __version__
from cairn.errors import Interrupted

_stopped_by: list[int] = []  # the signal that stopped cairn, once one has


def _stop(signum: int, frame: object) -> None:
    """SIGTERM (like SIGINT) unwinds cairn: every engine is stopped and nothing half-written."""
    _stopped_by.append(signum)
    raise KeyboardInterrupt


class _Commands(typer.core.TyperGroup):
    """Every command: Ctrl-C or SIGTERM ends its engines and exits with one line."""

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            from cairn import engines

            engines.interrupt_all()
            signum = _stopped_by[0] if _stopped_by else signal.SIGINT
            what = "stopped by SIGTERM" if signum == signal.SIGTERM else "interrupted"
            stopped = Interrupted(
                f"cairn was {what}: its engines are stopped, no output is half-written."
            )
            stopped.exit_code = 128 + signum
            raise stopped from None


app = typer.Typer(
    cls=_Commands,
    name="cairn",
    help="Build, measure and check a family of slim Debian container images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"cairn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    pass
