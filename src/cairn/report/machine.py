"""`cairn setup`'s report on a terminal: one line per engine, then what to run."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cairn.machine import SetupReport


def render_setup(report: SetupReport, console: Console) -> None:
    table = Table(box=None, pad_edge=False)
    for column in ("engine", "for", "package", "status"):
        table.add_column(column, no_wrap=column in ("engine", "package"))
    for e in report.engines:
        status = "[green]ok[/]" if e.ok else "[red]missing[/] " + escape(", ".join(e.missing))
        table.add_row(e.name, escape(e.needed_for), escape(" ".join(e.packages)), status)
    console.print(f"{escape(report.system_name)}; platforms {', '.join(report.platforms)}")
    console.print(table)
    if report.ok:
        console.print("Every engine is there.")
    elif report.supported or not report.missing_packages:
        runs = f"runs {report.install_command} and " if report.install_command else ""
        console.print(
            f"Try: cairn setup --install (as root), which {escape(runs)}registers qemu's "
            "binfmt handlers.",
            soft_wrap=True,
        )
    else:
        console.print(
            f"cairn knows no package names for {escape(report.system_name)}: install the "
            "missing engines by hand.",
            soft_wrap=True,
        )
