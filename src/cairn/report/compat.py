"""`cairn compat` on a terminal: objects grouped by verdict, then the summary."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cairn.compat.scan import CompatResult

_ORDER = (("will-not-load", "bold red"), ("risky", "yellow"), ("ok", "green"))


def render_compat(result: CompatResult, console: Console, *, show_ok: bool = False) -> None:
    libc = result.target_libc
    console.print(
        f"{escape(result.source)} on {escape(result.target)} "
        f"({libc.family} {libc.version or '?'}, {libc.machine or '?'})",
        highlight=False,
    )
    for verdict, style in _ORDER:
        chosen = [o for o in result.objects if o.verdict == verdict]
        if not chosen or (verdict == "ok" and not show_ok):
            continue
        table = Table(title=f"[{style}]{verdict}[/] ({len(chosen)})", title_justify="left")
        table.add_column("object", overflow="fold")
        table.add_column("kind")
        table.add_column("why", overflow="fold")
        for o in chosen:
            why = "\n".join(f"{r.kind}: {r.detail}" for r in o.reasons) or "-"
            table.add_row(escape(o.path), o.kind, escape(why))
        console.print(table)
    s = result.summary
    console.print(
        f"{s.ok} ok, {s.will_not_load} will not load, {s.risky} risky; "
        f"needs glibc {s.min_glibc or '(none)'}",
        highlight=False,
    )
