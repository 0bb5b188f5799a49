"""This machine: cairn setup."""

from __future__ import annotations

from typing import Annotated

import typer

from cairn.cli.app import app
from cairn.cli.common import JsonOpt, PlatformOpt, _console
from cairn.output import dumps

DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")


@app.command()
def setup(
    install: Annotated[
        bool,
        typer.Option(
            "--install",
            help="Install what is missing with apt-get and register qemu's binfmt handlers "
            "(as root).",
        ),
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Only look (the default); exit 3 if anything is missing."),
    ] = False,
    platforms: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which of cairn's engines (mmdebstrap, skopeo, buildah, qemu-user, ...) this machine
    has, and the command that installs the rest; --install runs it."""
    from cairn.errors import UsageError
    from cairn.machine import check as check_machine
    from cairn.machine import install as install_engines
    from cairn.platforms import platform_option
    from cairn.report.machine import render_setup

    if install and check:
        raise UsageError("--check and --install exclude each other.", "Try: one of them.")
    chosen = [platform_option(name) for name in platforms or DEFAULT_PLATFORMS]
    report = check_machine(chosen)
    if install and not report.ok:
        needed = " ".join(report.missing_packages) or "nothing"
        _console(stderr=True, highlight=False).print(
            f"cairn setup: installing {needed}; registering qemu's binfmt handlers where missing",
            markup=False,
            soft_wrap=True,
        )
        report = install_engines(chosen)
    if as_json:
        print(dumps(report))
    else:
        render_setup(report, _console())
    if not report.ok:
        raise typer.Exit(3)
