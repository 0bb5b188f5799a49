"""The terminal summary of a build."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from cairn.results import BuildResult


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def render_build(result: BuildResult, console: Console) -> None:
    table = Table(title=f"Built into {result.output}")
    for col in ("image", "platform", "size", "compressed", "packages", "files", "time", "manifest"):
        table.add_column(
            col,
            justify="right"
            if col in ("size", "compressed", "packages", "files", "time")
            else "left",
        )
    for img in result.images:
        for p in img.platforms:
            table.add_row(
                img.name,
                p.platform,
                mb(p.uncompressed_bytes),
                mb(p.compressed_bytes),
                str(p.packages),
                str(p.files),
                f"{p.seconds:.0f}s",
                p.manifest_digest[:19],
            )
    console.print(table)
    for img in result.images:
        console.print(f"{img.name}: index {img.index_digest}")
