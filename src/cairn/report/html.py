"""Self-contained HTML reports: tables written here, treemaps drawn by the page's own script
from the data embedded in it (nothing is fetched when the page is viewed)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from cairn.data import data_path
from cairn.report.measure import cell, mb, summary_rows

MAX_TILES = 150


def _page(title: str, body: str, treemaps: list[dict[str, Any]]) -> str:
    template = data_path("report.html").read_text()
    # "</" inside the JSON would end its <script> element early
    data = json.dumps({"treemaps": treemaps}).replace("</", "<\\/")
    return (
        template.replace("__TITLE__", escape(title))
        .replace("__BODY__", body)
        .replace("__DATA__", data)
    )


def _table(head: list[str], rows: list[list[str]], numeric: tuple[int, ...] = ()) -> str:
    out = ["<table><thead><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        cells = (
            f'<td class="n">{escape(c)}</td>' if i in numeric else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        out += ["<tr>", *cells, "</tr>"]
    out.append("</tbody></table>")
    return "".join(out)


def _package_tiles(a: dict[str, Any]) -> list[dict[str, Any]]:
    tiles = [{"name": p["name"], "bytes": p["bytes"]} for p in a["packages"][:MAX_TILES]]
    rest = sum(p["bytes"] for p in a["packages"][MAX_TILES:])
    if rest:
        tiles.append({"name": f"{len(a['packages']) - MAX_TILES} more packages", "bytes": rest})
    if a["unowned_bytes"] > 0:
        tiles.append({"name": "owned by no package", "bytes": a["unowned_bytes"]})
    return tiles


def _findings(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "<p>No findings.</p>"
    items = "".join(
        f'<li><span class="sev-{escape(f["severity"])}">{escape(f["severity"])}</span> '
        f"<code>{escape(f['code'])}</code> {escape(f['path'] or '')} {escape(f['message'])}</li>"
        for f in findings
    )
    return f"<ul>{items}</ul>"


def analysis_html(a: dict[str, Any]) -> str:
    title = f"cairn analyze: {a['image']}"
    body = [
        f"<h1>{escape(title)}</h1>",
        _table(["measured", "value"], [[k, v] for k, v in summary_rows(a)]),
        "<h2>Space by category</h2>",
        '<div class="treemap" id="treemap-categories"></div>',
        "<h2>Space by package</h2>",
        '<div class="treemap" id="treemap-packages"></div>',
        "<h2>Layers</h2>",
        _table(
            ["#", "bytes", "compressed", "added", "modified", "deleted", "created by"],
            [
                [
                    str(layer["index"]),
                    mb(layer["bytes"]),
                    mb(layer["compressed_bytes"]),
                    str(layer["added"]),
                    str(layer["modified"]),
                    str(layer["deleted"]),
                    layer["created_by"],
                ]
                for layer in a["layers"]
            ],
            (1, 2, 3, 4, 5),
        ),
        "<h2>Where bytes are wasted</h2>",
        _table(
            ["path", "bytes", "why"],
            [[w["path"], mb(w["bytes"]), "; ".join(w["reasons"])] for w in a["wasted_paths"]],
            (1,),
        ),
        "<h2>Categories</h2>",
        _table(
            ["category", "bytes", "files"],
            [[c["name"], f"{c['bytes']:,}", str(c["files"])] for c in a["categories"]],
            (1, 2),
        ),
        "<h2>Findings</h2>",
        _findings(a["findings"]),
    ]
    treemaps = [
        {"id": "treemap-categories", "items": a["categories"]},
        {"id": "treemap-packages", "items": _package_tiles(a)},
    ]
    return _page(title, "\n".join(body), treemaps)


def comparison_html(rows: list[dict[str, Any]], analyses: list[dict[str, Any]]) -> str:
    images = [a["image"] for a in analyses]
    body = [
        "<h1>cairn compare</h1>",
        _table(
            ["measured", *images],
            [[r["metric"], *(cell(v) for v in r["values"])] for r in rows],
            tuple(range(1, len(images) + 1)),
        ),
    ]
    treemaps = []
    for i, a in enumerate(analyses):
        body += [
            f"<h2>Space by category: {escape(a['image'])}</h2>",
            f'<div class="treemap" id="treemap-{i}"></div>',
        ]
        treemaps.append({"id": f"treemap-{i}", "items": a["categories"]})
    return _page("cairn compare", "\n".join(body), treemaps)
