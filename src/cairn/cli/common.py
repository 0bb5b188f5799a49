"""What the commands share: their options (declared once) and small helpers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from cairn.oci.access import Access
    from cairn.platforms import Platform
    from cairn.trust.keys import SigningKey

FamilyDir = Annotated[
    Path,
    typer.Argument(help="Directory holding cairn.toml (or the file itself).", show_default=False),
]


ImageOpt = Annotated[
    list[str] | None, typer.Option("--image", "-i", help="Only this image (repeatable).")
]
PlatformOpt = Annotated[
    list[str] | None,
    typer.Option("--platform", "-p", help="Only this platform, e.g. linux/arm64 (repeatable)."),
]
OutputOpt = Annotated[
    str | None, typer.Option("--output", "-o", help="The oci:DIR store; default from cairn.toml.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
JobsOpt = Annotated[int, typer.Option(min=1, help="Platforms (or resolutions) run at once.")]
PlainHttpOpt = Annotated[
    bool,
    typer.Option(
        "--plain-http",
        "--insecure",
        help="Allow a registry that speaks no TLS to be spoken to in plain HTTP (one that "
        "speaks TLS still has its certificate checked). Registries on 127.0.0.1 and "
        "localhost may always. --insecure is the older name.",
    ),
]
TlsVerifyOpt = Annotated[
    bool,
    typer.Option(
        "--tls-verify/--no-tls-verify",
        help="Check registries' TLS certificates (against the system store, certs.d and "
        "--ca-file); --no-tls-verify speaks TLS without checking, for a registry you trust.",
    ),
]
CaFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--ca-file",
        help="Also trust this CA certificate (PEM) for every registry (else "
        "$CAIRN_REGISTRY_CA_FILE), beside the system store and containers' certs.d.",
        show_default=False,
    ),
]
RegistryTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--registry-timeout",
        help="Seconds a registry operation may go without sending or receiving a byte "
        "before it ends (default 180, or $CAIRN_REGISTRY_TIMEOUT).",
        show_default=False,
    ),
]
RegistryRetriesOpt = Annotated[
    int | None,
    typer.Option(
        "--registry-retries",
        help="Retries of a transient registry failure, with exponential back-off "
        "(default 3, or $CAIRN_REGISTRY_RETRIES).",
        show_default=False,
    ),
]

ImageArg = Annotated[
    str,
    typer.Argument(
        help="oci:DIR[:NAME], docker-archive:FILE, docker://REGISTRY/REPO:TAG, "
        "docker-daemon:REPO:TAG or dir:ROOTFS.",
        show_default=False,
    ),
]
OnePlatformOpt = Annotated[
    str | None,
    typer.Option(
        "--platform", "-p", help="Which platform of a multi-arch image (default: this host's)."
    ),
]
FailOnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--fail-on",
        help="Exit 1 when this holds, e.g. 'size>150MB', 'wasted>5MB', 'efficiency<95%', "
        "'packages>200', 'category:docs>1MB', 'findings>0' (repeatable).",
    ),
]
ScanFailOnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--fail-on",
        help="Exit 1 when this holds: 'actionable>0' counts the findings a newer Debian "
        "version fixes.",
    ),
]
HtmlOpt = Annotated[
    Path | None, typer.Option("--html", help="Also write a self-contained HTML report here.")
]
CategoriesOpt = Annotated[
    Path | None,
    typer.Option(
        "--categories",
        help="A TOML file of category rules (the format of cairn's categories.toml), "
        "tried before the built-in ones.",
    ),
]


PassphraseFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="The key's passphrase, the file's first line (else $CAIRN_KEY_PASSPHRASE, else "
        "asked on the terminal, not echoed).",
        show_default=False,
    ),
]
SignKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--sign-key",
        help="Sign each image (its index and every platform's manifest) with this "
        "cosign-format private key before it is pushed.",
        show_default=False,
    ),
]


VexAdvisoriesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--advisories",
        "-a",
        help="Also attest OpenVEX statements from these advisories: Debian security tracker "
        "JSON or OSV records, a file, a directory or a URL (repeatable).",
    ),
]


def registry_access(plain_http: bool, tls_verify: bool, ca_file: Path | None) -> Access:
    """How this command reaches registries: one answer for skopeo and cairn's client."""
    from cairn.oci.access import Access, AccessOptions

    return Access(
        AccessOptions.from_options(plain_http=plain_http, tls_verify=tls_verify, ca_file=ca_file)
    )


def signing_key(path: Path, passphrase_file: Path | None) -> SigningKey:
    """The private key at `path`, opened with the passphrase the options give."""
    from cairn.trust.keys import load_signing_key, read_passphrase

    return load_signing_key(path, read_passphrase(passphrase_file))


def _platform(value: str | None) -> Platform | None:
    from cairn.platforms import platform_option

    return platform_option(value) if value else None


def _console(stderr: bool = False, highlight: bool = True) -> Console:
    """rich's Console, imported when first used: a command that prints JSON never pays for
    it."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=highlight, emoji=False)


def _warn(warnings: list[str]) -> None:
    err = _console(stderr=True, highlight=False)
    for w in warnings:
        err.print(f"[yellow]warning:[/yellow] {w}", soft_wrap=True)


def _write_text(path: Path, text: str) -> None:
    from cairn.oci.layout import write_atomically

    write_atomically(path, text.encode())


def _say(quiet: bool) -> Callable[[str], None]:
    err = _console(stderr=True, highlight=False)
    return (
        (lambda text: None)
        if quiet
        else (lambda text: err.print(text, markup=False, soft_wrap=True))
    )
