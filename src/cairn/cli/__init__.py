"""The cairn command line: parses, calls an operation, renders its result. Nothing else.

Each module registers its commands with the one typer app; `cairn --help` lists them in
the order of ORDER: the family's first, then projects, checks and measuring.
"""

from __future__ import annotations

import signal
import sys

from cairn.cli import checks, family, machine, measure, projects, trust
from cairn.cli.app import _stop, app
from cairn.cli.common import _console
from cairn.errors import CairnError, Interrupted

__all__ = ["app", "checks", "family", "machine", "main", "measure", "projects", "trust"]

ORDER = (
    *("build", "plan", "config", "lock", "refresh", "login", "push", "merge"),
    *("keygen", "sign", "verify", "bundle", "unbundle"),
    *("init", "doctor", "compat", "dns"),
    *("analyze", "compare", "sbom", "scan"),
    "setup",
)
app.registered_commands.sort(
    key=lambda c: ORDER.index(c.name or (c.callback.__name__ if c.callback else ""))
)


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    try:
        app()
    except CairnError as e:
        err = _console(stderr=True, highlight=False)
        from rich.markup import escape  # the message may quote a log: its [brackets] are text

        err.print(f"[bold red]error:[/bold red] {escape(e.message)}", markup=True, soft_wrap=True)
        if e.hint:
            err.print(e.hint, soft_wrap=True, markup=False)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(Interrupted.exit_code)
