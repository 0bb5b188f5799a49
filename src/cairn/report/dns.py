"""`cairn dns`: each resolver's steps side by side, then the pitfalls."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cairn.compat.dns import Resolution


def render_dns(name: str, resolutions: list[Resolution], console: Console) -> None:
    table = Table(title=f"getaddrinfo({name!r})", title_justify="left", show_lines=True)
    table.add_column("step")
    for r in resolutions:
        table.add_column(r.resolver, overflow="fold")
    depth = max(len(r.steps) for r in resolutions)
    for i in range(depth):
        cells = []
        for r in resolutions:
            if i < len(r.steps):
                s = r.steps[i]
                what = "hosts file" if s.action == "hosts" else "DNS"
                cells.append(f"{what}: {escape(s.name)}\n[dim]{escape(s.detail)}[/]")
            else:
                cells.append("")
        table.add_row(str(i + 1), *cells)
    console.print(table)
    for r in resolutions:
        for p in r.pitfalls:
            console.print(f"[yellow]{r.resolver}[/]: {escape(p)}", soft_wrap=True)
