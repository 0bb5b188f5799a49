"""The cairn command line: parses, calls an operation, renders its result. Nothing else."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cairn import __version__
from cairn.errors import CairnError, Interrupted

app = typer.Typer(
    name="cairn",
    help="Build, measure and check a family of slim Debian container images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

FamilyDir = Annotated[
    Path,
    typer.Argument(help="Directory holding cairn.toml (or the file itself).", show_default=False),
]


def _version(value: bool) -> None:
    if value:
        print(f"cairn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    pass


@app.command()
def build(
    family_dir: FamilyDir,
    image: Annotated[
        list[str] | None, typer.Option("--image", "-i", help="Build only this image (repeatable).")
    ] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "--platform", "-p", help="Build only for this platform, e.g. linux/arm64 (repeatable)."
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="oci:DIR or docker-archive:FILE[:REPO:TAG]; default from cairn.toml.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON on stdout.")
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Package cache; default $XDG_CACHE_HOME/cairn.", show_default=False),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Download every package afresh.")
    ] = False,
    jobs: Annotated[int, typer.Option(min=1, help="Platforms built at the same time.")] = 2,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even what is unchanged.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Echo every engine command.")
    ] = False,
) -> None:
    """Build the family's images for every platform (default: all of cairn.toml).

    Images whose inputs have not changed since they were built into the layout
    are kept, not rebuilt (see cairn plan).
    """
    from cairn.build import BuildOptions
    from cairn.build import build as run_build
    from cairn.debian.cache import default_cache_dir
    from cairn.report.build import render_build
    from cairn.report.console import progress, setup_logging
    from cairn.results import to_json
    from cairn.spec import load_family

    setup_logging(verbose)
    family = load_family(family_dir)
    opts = BuildOptions(
        images=tuple(image or ()),
        platforms=tuple(platform or ()),
        output=output,
        cache_dir=None if no_cache else (cache_dir or default_cache_dir()),
        jobs=jobs,
        force=force,
    )
    try:
        with progress(quiet=as_json) as shown:
            result = run_build(family, opts, shown)
    except KeyboardInterrupt:
        raise Interrupted("cairn build was interrupted; nothing was written.") from None
    if as_json:
        print(json.dumps(to_json(result), indent=2))
    else:
        render_build(result, Console())


@app.command()
def plan(
    family_dir: FamilyDir,
    image: Annotated[
        list[str] | None, typer.Option("--image", "-i", help="Plan only this image (repeatable).")
    ] = None,
    platform: Annotated[
        list[str] | None, typer.Option("--platform", "-p", help="Plan only this platform.")
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="The oci:DIR to compare with.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Plan to rebuild everything.")] = False,
) -> None:
    """Say what cairn build would build and why, without building anything."""
    from cairn.build import BuildOptions
    from cairn.build import plan as make_plan
    from cairn.report.build import render_plan
    from cairn.results import SCHEMA_VERSION, PlanResult, PlanStep, to_json
    from cairn.spec import load_family

    family = load_family(family_dir)
    opts = BuildOptions(
        images=tuple(image or ()), platforms=tuple(platform or ()), output=output, force=force
    )
    steps = make_plan(family, opts)
    result = PlanResult(
        SCHEMA_VERSION,
        output or family.output,
        [PlanStep(s.image.name, s.platform.name, s.action, s.reason, s.input) for s in steps],
    )
    if as_json:
        print(json.dumps(to_json(result), indent=2))
    else:
        render_plan(result, Console())


def main() -> None:
    try:
        app()
    except CairnError as e:
        err = Console(stderr=True, highlight=False)
        err.print(f"[bold red]error:[/bold red] {e.message}", markup=True, soft_wrap=True)
        if e.hint:
            err.print(e.hint, soft_wrap=True, markup=False)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(Interrupted.exit_code)
