"""`cairn analyze`, `cairn compare` and `cairn scan` on a terminal and as Markdown."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

TOP = 10


def mb(n: int | None) -> str:
    """Sizes in powers of 1000, as registries and dive show them."""
    if n is None:
        return "-"
    if abs(n) >= 1e6:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.1f} kB" if abs(n) >= 1e3 else f"{n} B"


def summary_rows(a: dict[str, Any]) -> list[tuple[str, str]]:
    libc = a["libc"]
    os_ = a["os"]
    return [
        ("size", mb(a["total_bytes"])),
        ("compressed", mb(a["compressed_bytes"])),
        ("files / dirs / links", f"{a['files']} / {a['directories']} / {a['links']}"),
        ("os", f"{os_.get('id') or '?'} {os_.get('version_id') or ''}".strip()),
        ("libc", f"{libc['family']} {libc['version'] or ''}".strip()),
        ("package managers", ", ".join(a["package_managers"]) or "none"),
        ("packages", str(a["package_count"])),
        ("shell", "yes" if a["shell"] else "no"),
        ("user", a["user"]),
        ("entrypoint", " ".join(a["entrypoint"] or []) or "-"),
        ("cmd", " ".join(a["cmd"] or []) or "-"),
        ("wasted (dive's count)", mb(a["wasted_bytes_dive"])),
        ("wasted (bytes no one sees)", mb(a["wasted_bytes"])),
        ("efficiency (dive)", f"{a['efficiency'] * 100:.2f} %"),
    ]


def render_analysis(a: dict[str, Any], console: Console) -> None:
    head = Table(title=escape(f"{a['image']} ({a['platform'] or 'directory'})"), show_header=False)
    head.add_column()
    head.add_column()
    for k, v in summary_rows(a):
        head.add_row(k, escape(v))
    console.print(head)

    layers = Table(title="layers")
    for col in ("#", "bytes", "added", "modified", "deleted", "created by"):
        layers.add_column(col, overflow="fold")
    for layer in a["layers"]:
        layers.add_row(
            str(layer["index"]),
            mb(layer["bytes"]),
            str(layer["added"]),
            str(layer["modified"]),
            str(layer["deleted"]),
            escape(layer["created_by"][:120]),
        )
    console.print(layers)

    cats = Table(title="size by category")
    for col in ("category", "bytes", "files", "share"):
        cats.add_column(col)
    total = a["total_bytes"] or 1
    for c in a["categories"]:
        if c["bytes"]:
            cats.add_row(c["name"], mb(c["bytes"]), str(c["files"]), f"{c['bytes'] / total:.1%}")
    console.print(cats)

    pkgs = Table(
        title=f"largest packages (of {a['package_count']}; unowned {mb(a['unowned_bytes'])})"
    )
    for col in ("package", "version", "bytes", "layer"):
        pkgs.add_column(col)
    for p in a["packages"][:TOP]:
        pkgs.add_row(escape(p["name"]), escape(p["version"]), mb(p["bytes"]), str(p["layer"]))
    console.print(pkgs)

    if a["wasted_paths"]:
        waste = Table(title="where bytes are wasted")
        waste.add_column("path", overflow="fold")
        waste.add_column("bytes")
        waste.add_column("why", overflow="fold")
        for w in a["wasted_paths"][:TOP]:
            waste.add_row(escape(w["path"]), mb(w["bytes"]), escape("; ".join(w["reasons"])))
        console.print(waste)

    slim = a["slimming"]
    leaves = ", ".join(f"{p['name']} ({mb(p['bytes'])})" for p in slim["unneeded_packages"][:5])
    console.print(
        f"slimming: the {slim['profile']} profile would remove {mb(slim['bytes'])} "
        f"in {slim['files']} files; nothing depends on: {escape(leaves) or '-'}",
        highlight=False,
    )
    for f in a["findings"]:
        style = {"error": "bold red", "warning": "yellow"}.get(f["severity"], "dim")
        where = f" {f['path']}" if f["path"] else ""
        console.print(
            f"[{style}]{f['severity']}[/] {f['code']}:{escape(where)} {escape(f['message'])}"
        )


def comparison_rows(analyses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The compare table: one measured figure per row, one column per image."""

    def row(metric: str, values: list[Any]) -> dict[str, Any]:
        return {"metric": metric, "values": values}

    rows = [
        row("size (bytes)", [a["total_bytes"] for a in analyses]),
        row("compressed (bytes)", [a["compressed_bytes"] for a in analyses]),
        row("packages", [a["package_count"] for a in analyses]),
        row("package managers", [", ".join(a["package_managers"]) or "none" for a in analyses]),
        row(
            "libc",
            [f"{a['libc']['family']} {a['libc']['version'] or ''}".strip() for a in analyses],
        ),
        row(
            "os",
            [
                f"{a['os'].get('id') or '?'} {a['os'].get('version_id') or ''}".strip()
                for a in analyses
            ],
        ),
        row("shell", ["yes" if a["shell"] else "no" for a in analyses]),
        row("user", [a["user"] for a in analyses]),
        row("files", [a["files"] for a in analyses]),
        row("layers", [len(a["layers"]) for a in analyses]),
        row("wasted (bytes)", [a["wasted_bytes"] for a in analyses]),
        row("efficiency (dive)", [round(a["efficiency"], 4) for a in analyses]),
        row("findings", [len(a["findings"]) for a in analyses]),
    ]
    names = list(dict.fromkeys(c["name"] for a in analyses for c in a["categories"]))
    for name in names:
        values = [
            next((c["bytes"] for c in a["categories"] if c["name"] == name), 0) for a in analyses
        ]
        if any(values):
            rows.append(row(f"{name} (bytes)", values))
    return rows


def cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "-" if value is None else str(value)


def render_comparison(rows: list[dict[str, Any]], images: list[str], console: Console) -> None:
    table = Table(title="comparison")
    table.add_column("measured")
    for image in images:
        table.add_column(escape(image), justify="right", overflow="fold")
    for r in rows:
        table.add_row(r["metric"], *(escape(cell(v)) for v in r["values"]))
    console.print(table)


def comparison_markdown(rows: list[dict[str, Any]], images: list[str]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "| measured | " + " | ".join(esc(i) for i in images) + " |",
        "|---|" + "---:|" * len(images),
    ]
    lines += [
        f"| {esc(r['metric'])} | " + " | ".join(esc(cell(v)) for v in r["values"]) + " |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def render_scan(result: dict[str, Any], console: Console) -> None:
    s = result["summary"]
    table = Table(title=escape(f"{result['image']}: {result['package_count']} packages"))
    for col in ("status", "id", "source", "installed", "fixed in", "detail"):
        table.add_column(col, overflow="fold")
    style = {"fixed": "bold green", "not-fixed": "yellow", "wont-fix": "dim"}
    for f in result["findings"]:
        table.add_row(
            f"[{style[f['status']]}]{f['status']}[/]",
            escape(f["id"]),
            escape(f["source"]),
            escape(f["installed"]),
            escape(f["fixed_version"] or "-"),
            escape(f["detail"]),
        )
    console.print(table)
    console.print(
        f"{s['fixed']} fixed in a newer Debian version (actionable), {s['not-fixed']} not fixed "
        f"yet, {s['wont-fix']} marked unimportant or ignored by Debian",
        highlight=False,
    )
