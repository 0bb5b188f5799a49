"""`cairn dns`: each resolver's steps side by side, what each returns, then the pitfalls."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cairn.compat.dns import DnsReport, Resolution


def outcome(r: Resolution) -> str:
    """What the lookup ends with, in words: the answer, and how many DNS questions it cost."""
    count = len(r.queries)
    asked = f"{count} DNS {'query' if count == 1 else 'queries'}"
    if r.answered_by == "hosts":
        return f"{', '.join(r.addresses or ())} from /etc/hosts; {asked}"
    if r.answered_by == "dns":
        return f"{', '.join(r.addresses or ())} from DNS; {asked}"
    if r.addresses is None:
        return f"gives up (EAI_AGAIN) after {asked}"
    return f"if DNS knows none of these names: no such name after {asked}"


def render_dns(report: DnsReport, console: Console) -> None:
    resolutions = report.resolvers
    table = Table(title=f"getaddrinfo({report.name!r})", title_justify="left", show_lines=True)
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
    table.add_row("result", *[escape(outcome(r)) for r in resolutions])
    console.print(table)
    for finding in report.findings:
        console.print(f"[red]input[/]: {escape(finding)}", soft_wrap=True)
    for r in resolutions:
        for p in r.pitfalls:
            console.print(f"[yellow]{r.resolver}[/]: {escape(p)}", soft_wrap=True)
