"""The project commands: init and doctor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cairn.cli.app import app
from cairn.cli.common import (
    JsonOpt,
    _console,
    _warn,
)
from cairn.output import dumps


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="The project directory (created if missing).", show_default=False)
    ],
    lang: Annotated[str, typer.Option("--lang", help="go, python, node or java.")],
    family: Annotated[
        str,
        typer.Option(help="A family directory (holding cairn.toml) or a registry prefix."),
    ],
    services: Annotated[
        str, typer.Option(help="Services the dev container starts, e.g. redis,kafka.")
    ] = "",
    registry: Annotated[
        str | None,
        typer.Option(
            help="REGISTRY/PREFIX the family is pushed to (with a family directory); "
            "default localhost:5000/FAMILY-DIR-NAME.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace files an earlier init (or you) wrote.")
    ] = False,
) -> None:
    """Write a project's Dockerfile, .dockerignore, justfile, dev container and README
    section on the family's images (and a hello-world program in an empty directory)."""
    from cairn.scaffold.init import init_project

    result = init_project(
        directory, lang, family, services=services, registry=registry, force=force
    )
    _warn(list(result.warnings))
    for name in result.written:
        print(f"{'replaced' if name in result.overwritten else 'wrote'} {directory / name}")


@app.command()
def doctor(
    directory: Annotated[Path, typer.Argument(help="The project directory.", show_default=False)],
    family: Annotated[
        str | None,
        typer.Option(
            help="REGISTRY/PREFIX of the family's images (default: the Dockerfile's ARG FAMILY).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a project against the conventions cairn init writes: a multi-stage Dockerfile
    on pinned family images, the justfile's recipes, a multi-arch push, a dev container with
    the project's services, hadolint. Exit 1 when an error-level rule fails."""
    from cairn.report.doctor import render_doctor
    from cairn.scaffold.doctor import doctor as run_doctor

    report = run_doctor(directory, family)
    if as_json:
        print(dumps(report))
    else:
        render_doctor(report, _console())
    if report.errors:
        raise typer.Exit(1)
