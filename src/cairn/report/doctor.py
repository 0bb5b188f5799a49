"""`cairn doctor`'s findings on a terminal, one per line as linters print them."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from cairn.scaffold.doctor import Report

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def render_doctor(report: Report, console: Console) -> None:
    for f in report.findings:
        where = f"{f.file}:{f.line}" if f.line else f.file
        console.print(
            f"{escape(where)}: [{_STYLE[f.severity]}]{f.rule} {f.severity}[/] "
            f"{escape(f.message)}\n    fix: {escape(f.fix)}",
            soft_wrap=True,
            highlight=False,
        )
    others = len(report.findings) - report.errors
    verdict = (
        "every check passed"
        if not report.findings
        else "fix the errors"
        if report.errors
        else "no errors"
    )
    console.print(
        f"{report.project}: {report.errors} error(s), {others} other finding(s): {verdict}."
    )
