"""The terminal summary of a build."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from cairn.family.lock import LockRow
from cairn.family.results import BuildResult, PlanResult, RefreshResult


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def short(digest: str) -> str:
    return digest.partition(":")[2][:12]


def render_build(result: BuildResult, console: Console) -> None:
    table = Table(title=f"Built into {result.output}", title_justify="left", box=box.SIMPLE)
    table.add_column("image", no_wrap=True)
    table.add_column("platform", no_wrap=True)
    for col in ("size", "gzip", "pkgs", "time"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("manifest", no_wrap=True)
    for img in result.images:
        for p in img.platforms:
            table.add_row(
                img.name,
                p.platform,
                mb(p.uncompressed_bytes),
                mb(p.compressed_bytes),
                str(p.packages),
                "kept" if p.action == "skip" else f"{p.seconds:.0f}s",
                short(p.manifest_digest),
            )
    console.print(table)
    for img in result.images:
        console.print(f"{img.name}: index {img.index_digest}", soft_wrap=True)


def render_plan(result: PlanResult, console: Console) -> None:
    table = Table(title=f"Plan against {result.output}", title_justify="left")
    for col in ("image", "platform", "action", "reason"):
        table.add_column(col, no_wrap=True)
    for s in result.steps:
        table.add_row(s.image, s.platform, s.action, s.reason)
    console.print(table)


def render_lock(rows: list[LockRow], path: Path, console: Console) -> None:
    table = Table(title=f"Wrote {path}", title_justify="left", box=box.SIMPLE)
    for col in ("image", "platform", "entry", "pkgs", "versions moved"):
        table.add_column(col, no_wrap=col != "versions moved")
    for r in rows:
        moved = ", ".join(r.changed[:6]) + (
            f" (+{len(r.changed) - 6})" if len(r.changed) > 6 else ""
        )
        table.add_row(r.image, r.platform, r.state, str(r.packages), moved or "-")
    console.print(table)


def render_refresh(result: RefreshResult, console: Console) -> None:
    if not result.updates:
        console.print(f"Every image in {result.output} has the archive's newest versions.")
        return
    table = Table(
        title=f"{result.updates} package updates for {result.output}",
        title_justify="left",
        box=box.SIMPLE,
    )
    for col in ("image", "platform", "package", "installed", "available", "suite"):
        table.add_column(col, no_wrap=True)
    for img in result.images:
        for u in img.updates:
            table.add_row(img.image, img.platform, u.package, u.installed, u.available, u.suite)
    console.print(table)
