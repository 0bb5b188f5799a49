"""The measuring commands: analyze, compare, sbom, scan, and their --fail-on gates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cairn.cli.app import app
from cairn.cli.common import (
    CategoriesOpt,
    FailOnOpt,
    HtmlOpt,
    ImageArg,
    JsonOpt,
    OnePlatformOpt,
    ScanFailOnOpt,
    _console,
    _platform,
    _write_text,
)
from cairn.output import dumps

if TYPE_CHECKING:
    from cairn.measure.gate import Condition


def _gate(
    conditions: list[str] | None, allowed: tuple[str, ...], categories: Path | None = None
) -> list[Condition]:
    from cairn.measure.gate import parse_condition

    names: list[str] = []
    if any(c.strip().startswith("category:") for c in conditions or []):
        from cairn.measure.categories import Classifier, load_categories

        names = Classifier(load_categories(categories)).names
    return [parse_condition(c, allowed, names) for c in conditions or []]


def _judge(conditions: list[Condition], measured: dict[str, object]) -> list[str]:
    """The conditions that hold; before anything is printed, so that a condition the
    result cannot answer is a usage error, not half an output."""
    from cairn.measure.gate import check

    return check(conditions, measured)


def _enforce(failed: list[str]) -> None:
    if failed:
        err = _console(stderr=True, highlight=False)
        for message in failed:
            err.print(f"failed: {message}", markup=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def analyze(
    image: ImageArg,
    platform: OnePlatformOpt = None,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
    categories: CategoriesOpt = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Where an image's bytes go: layers and waste (dive's figures and the corrected ones),
    size by category and by package, OS, libc, findings and what slimming would save.
    Layers are read as streams; nothing is extracted."""
    from cairn.measure.gate import ANALYSIS_METRICS
    from cairn.measure.operations import analyze_image

    conditions = _gate(fail_on, ANALYSIS_METRICS, categories)
    measured = analyze_image(image, _platform(platform), categories)
    failed = _judge(conditions, measured)
    if html is not None:
        from cairn.report.html import analysis_html

        _write_text(html, analysis_html(measured))
    if as_json:
        from cairn.measure.results import Analysis, typed

        print(dumps(typed(Analysis, measured)))
    else:
        from cairn.report.measure import render_analysis

        render_analysis(measured, _console())
    _enforce(failed)


@app.command()
def compare(
    images: Annotated[list[str], typer.Argument(help="Two or more images.", show_default=False)],
    platform: OnePlatformOpt = None,
    as_json: JsonOpt = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the table as Markdown.")
    ] = False,
    html: HtmlOpt = None,
    categories: CategoriesOpt = None,
) -> None:
    """Images side by side, each row a measured figure: size, compressed size, packages,
    libc, package manager, shell, category sizes, findings."""
    from cairn.measure.operations import analyze_image
    from cairn.report.html import comparison_html
    from cairn.report.measure import comparison_markdown, comparison_rows, render_comparison

    analyses = [analyze_image(i, _platform(platform), categories) for i in images]
    rows = comparison_rows(analyses)
    names = [a["image"] for a in analyses]
    if html is not None:
        _write_text(html, comparison_html(rows, analyses))
    if as_json:
        from cairn.measure.results import Analysis, Comparison, ComparisonRow, typed

        typed_rows = [ComparisonRow(r["metric"], r["values"]) for r in rows]
        print(dumps(Comparison([typed(Analysis, a) for a in analyses], typed_rows)))
    elif markdown:
        print(comparison_markdown(rows, names), end="")
    else:
        render_comparison(rows, names, _console())


@app.command()
def sbom(
    image: ImageArg,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="spdx-json (SPDX 2.3) or cyclonedx-json (1.5).")
    ] = "spdx-json",
    platform: OnePlatformOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """The image's packages as an SBOM, with package URLs and the licenses their copyright
    files state."""
    from cairn.errors import UsageError
    from cairn.measure.operations import sbom_document
    from cairn.measure.sbom import FORMATS

    if fmt not in FORMATS:
        raise UsageError(
            f"--format {fmt} is not an SBOM format cairn writes.",
            "Try: " + " or ".join(FORMATS) + ".",
        )
    text = json.dumps(sbom_document(image, _platform(platform), fmt), indent=2) + "\n"
    if output is None:
        print(text, end="")
    else:
        _write_text(output, text)


@app.command()
def scan(
    image: ImageArg,
    advisories: Annotated[
        list[str],
        typer.Option(
            "--advisories",
            "-a",
            help="Debian security tracker JSON or OSV records: a file, a directory or a URL "
            "(repeatable).",
        ),
    ],
    platform: OnePlatformOpt = None,
    as_json: JsonOpt = False,
    fail_on: ScanFailOnOpt = None,
) -> None:
    """Installed packages against advisories, each finding sorted into fixed (a newer Debian
    version fixes it), not-fixed, or wont-fix (unimportant, ignored)."""
    from cairn.measure.gate import SCAN_METRICS
    from cairn.measure.operations import scan_image
    from cairn.report.measure import render_scan

    conditions = _gate(fail_on, SCAN_METRICS)
    measured = scan_image(image, _platform(platform), advisories)
    failed = _judge(conditions, measured)
    if as_json:
        from cairn.measure.results import ScanResult, typed

        print(dumps(typed(ScanResult, measured)))
    else:
        render_scan(measured, _console())
    _enforce(failed)
