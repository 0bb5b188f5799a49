"""Will it run there: compat and dns."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cairn.cli.app import app
from cairn.cli.common import (
    JsonOpt,
    OnePlatformOpt,
    _console,
    _platform,
)
from cairn.output import dumps


@app.command()
def compat(
    source: Annotated[
        str,
        typer.Argument(
            help="A file, a directory, a wheel, or an image (oci:, docker-archive:, docker://, "
            "docker-daemon:, dir:).",
            show_default=False,
        ),
    ],
    target: Annotated[
        str, typer.Option(help="The image (or dir:ROOTFS) the source should run on.")
    ],
    platform: OnePlatformOpt = None,
    as_json: JsonOpt = False,
    fail_on: Annotated[
        str | None,
        typer.Option(help="Exit 1 when an object is will-not-load (or risky, or worse)."),
    ] = None,
    show_ok: Annotated[
        bool, typer.Option("--show-ok", help="List the objects that are ok too.")
    ] = False,
) -> None:
    """Will it run there? Every ELF object of SOURCE resolved against TARGET's loader,
    libraries, symbol versions (glibc) or symbols (musl), without running anything."""
    from cairn.compat.scan import compat as run_compat
    from cairn.errors import UsageError
    from cairn.report.compat import render_compat

    if fail_on not in (None, "will-not-load", "risky"):
        raise UsageError(f"--fail-on {fail_on} is not a verdict.", "Try: will-not-load or risky.")
    result = run_compat(source, target, _platform(platform))
    if as_json:
        print(dumps(result))
    else:
        render_compat(result, _console(), show_ok=show_ok)
    worst = {"will-not-load": result.summary.will_not_load}
    worst["risky"] = result.summary.will_not_load + result.summary.risky
    if fail_on is not None and worst[fail_on]:
        raise typer.Exit(1)


@app.command()
def dns(
    name: Annotated[str, typer.Argument(help="The name a program looks up.", show_default=False)],
    hosts: Annotated[Path, typer.Option(help="The hosts file (/etc/hosts).")] = Path("/etc/hosts"),
    resolv: Annotated[Path, typer.Option(help="resolv.conf.")] = Path("/etc/resolv.conf"),
    nsswitch: Annotated[
        Path | None,
        typer.Option(help="nsswitch.conf for glibc (default: none, glibc's built-in order)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The steps getaddrinfo(NAME) takes on glibc and on musl (per version where musl
    changed), given hosts, resolv.conf and nsswitch.conf, and the pitfalls between them."""
    from cairn.compat.dns import resolutions
    from cairn.errors import UsageError
    from cairn.report.dns import render_dns

    texts = {}
    for label, path in (("hosts", hosts), ("resolv", resolv), ("nsswitch", nsswitch)):
        if path is None:
            continue
        try:
            texts[label] = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise UsageError(f"Reading --{label} {path} failed: {e.strerror}.") from None
    report = resolutions(name, texts["hosts"], texts["resolv"], texts.get("nsswitch"))
    if as_json:
        print(dumps(report))
    else:
        render_dns(report, _console())
