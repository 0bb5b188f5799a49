"""The terminal view of `cairn config`: each image's resolved values and their origins."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from cairn.family.results import FamilyConfig


def _shown(value: str | list[str] | None) -> str:
    if value is None:
        return "-"
    return " ".join(value) if isinstance(value, list) else value


def render_config(config: FamilyConfig, console: Console) -> None:
    console.print(f"{config.spec} -> {config.output}")
    for image in config.images:
        built = f"from {image.parent}" if image.parent else "root"
        title = f"{image.name} ({built}; {image.table}; built from {image.kind})"
        table = Table(title=title, title_justify="left", box=box.SIMPLE)
        table.add_column("key", no_wrap=True)
        table.add_column("value")
        table.add_column("from", no_wrap=True)
        for v in image.values:
            table.add_row(v.key, _shown(v.value), v.origin)
        for key, items in (
            ("packages", image.packages),
            ("repositories", image.repositories),
            ("exclude", image.exclude),
        ):
            by_origin: dict[str, list[str]] = {}
            for item in items:
                by_origin.setdefault(item.origin, []).append(item.value)
            for origin, values in by_origin.items():
                table.add_row(key, " ".join(values), origin)
        console.print(table)
