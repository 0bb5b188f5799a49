"""Commands for trust across the air gap: keygen, sign."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cairn.cli.app import app
from cairn.cli.common import (
    CaFileOpt,
    FamilyDir,
    ImageOpt,
    JsonOpt,
    OutputOpt,
    PassphraseFileOpt,
    PlainHttpOpt,
    TlsVerifyOpt,
    VexAdvisoriesOpt,
    _say,
    registry_access,
    signing_key,
)
from cairn.output import dumps


@app.command()
def keygen(
    output_prefix: Annotated[
        Path,
        typer.Option("--output-prefix", help="Writes PREFIX.key (0600) and PREFIX.pub."),
    ] = Path("cairn"),
    passphrase_file: PassphraseFileOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing pair.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a signing key pair in cosign's format (ECDSA P-256; the private key encrypted
    with the passphrase), which cosign, skopeo and podman read as it is."""
    from cairn.trust.keys import generate, read_passphrase
    from cairn.trust.results import KeygenResult

    pair = generate(output_prefix, read_passphrase(passphrase_file, confirm=True), force=force)
    result = KeygenResult(str(pair.private), str(pair.public), pair.fingerprint)
    if as_json:
        print(dumps(result))
        return
    print(f"private key {pair.private} (keep it secret)")
    print(f"public key  {pair.public} (give it to those who verify)")
    print(f"fingerprint {pair.fingerprint}")


@app.command()
def sign(
    family_dir: FamilyDir,
    destination: Annotated[
        str,
        typer.Argument(
            help="REGISTRY/PREFIX the images are (or will be) pushed to: the signatures "
            "name REGISTRY/PREFIX/NAME.",
            show_default=False,
        ),
    ],
    key: Annotated[
        Path, typer.Option("--key", help="The cosign-format private key.", show_default=False)
    ],
    image: ImageOpt = None,
    output: OutputOpt = None,
    passphrase_file: PassphraseFileOpt = None,
    advisories: VexAdvisoriesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign and attest built images for DESTINATION in the family's store: each image's
    index and every platform's manifest signed, each platform's SBOMs and provenance
    attested; `cairn push` and `cairn bundle` carry them with the images."""
    from cairn.family.jobs import BuildOptions
    from cairn.trust.operations import sign_family
    from cairn.trust.predicates import NAMES

    opts = BuildOptions(images=tuple(image or ()), output=output)
    key_ = signing_key(key, passphrase_file)
    result = sign_family(
        family_dir,
        opts,
        destination,
        key_,
        say=_say(as_json),
        advisories=tuple(advisories or ()),
    )
    if as_json:
        print(dumps(result))
        return
    for s in result.signatures:
        state = "signed" if s.added else "already signed"
        print(f"{s.image} {s.digest} {state} for {s.repository}")
    for a in result.attestations:
        state = "attested" if a.added else "already attested"
        kinds = ", ".join(NAMES.get(t, t) for t in a.predicate_types)
        print(f"{a.image} {a.platform} {a.subject} {state} ({kinds})")


@app.command()
def verify(
    references: Annotated[
        list[str],
        typer.Argument(
            help="docker://REGISTRY/REPO:TAG (or @DIGEST), oci:DIR:NAME, or a bundle "
            "FILE.tar.zst (or FILE.parts).",
            show_default=False,
        ),
    ],
    key: Annotated[
        Path, typer.Option("--key", help="The signer's PEM public key.", show_default=False)
    ],
    plain_http: PlainHttpOpt = False,
    tls_verify: TlsVerifyOpt = True,
    ca_file: CaFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check images against a public key, reading nothing but where they are: the
    signatures of the index and every platform's manifest, each platform's attestations
    (their signatures and subjects), the provenance against the manifest's recorded inputs,
    and the referrers. Exits 7 naming the first check that fails."""
    from cairn.errors import VerificationError
    from cairn.trust.keys import load_public_key
    from cairn.trust.operations import verify_references

    result = verify_references(
        references, load_public_key(key), access=registry_access(plain_http, tls_verify, ca_file)
    )
    if as_json:
        print(dumps(result))
    else:
        from cairn.untrusted import printable

        # what a layout, a bundle or a registry says is shown escaped
        for image in result.images:
            print(f"{printable(image.reference, 300)} {printable(image.digest, 80)}")
            for c in image.checks:
                print(
                    f"  {'ok  ' if c.ok else 'FAIL'} {printable(c.check, 40):<16} "
                    f"{printable(c.subject, 19)}  {printable(c.detail, 300)}"
                )
    failed = [(i, c) for i in result.images for c in i.checks if not c.ok]
    if failed:
        image, check = failed[0]
        raise VerificationError(
            f"{printable(image.reference, 300)} is not verified: {printable(check.check, 40)} "
            f"of {printable(check.subject, 80)}: {printable(check.detail, 300)} "
            f"({len(failed)} checks failed).",
            "Try: check the key (--key), and that the image was pushed with its signatures "
            "and attestations (cairn push --sign-key).",
        )


def _size(value: str | None) -> int | None:
    from cairn.errors import UsageError

    if value is None:
        return None
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    number, unit = value.upper().rstrip("IB"), ""
    if number and number[-1] in units:
        number, unit = number[:-1], number[-1]
    if not number.isdigit() or int(number) == 0:
        raise UsageError(f"--part-size {value} is not a size.", "Try: --part-size 2G (or 500M).")
    return int(number) * units[unit]


@app.command()
def bundle(
    family_dir: FamilyDir,
    out: Annotated[
        Path, typer.Option("--to", help="The bundle file to write (.tar.zst).", show_default=False)
    ],
    key: Annotated[
        Path,
        typer.Option("--key", help="The private key that signs the bundle.", show_default=False),
    ],
    image: ImageOpt = None,
    output: OutputOpt = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Read the images from REGISTRY/PREFIX (as pushed) instead of the store.",
        ),
    ] = None,
    part_size: Annotated[
        str | None,
        typer.Option("--part-size", help="Split into parts of this size, e.g. 2G or 500M."),
    ] = None,
    made_for: Annotated[
        str | None,
        typer.Option(
            "--for",
            help="Carry the signatures made for REGISTRY/PREFIX (default: --from's, or the "
            "one destination the store's signatures name).",
        ),
    ] = None,
    passphrase_file: PassphraseFileOpt = None,
    plain_http: PlainHttpOpt = False,
    tls_verify: TlsVerifyOpt = True,
    ca_file: CaFileOpt = None,
) -> None:
    """Write the chosen images (every platform), their signatures and attestations, a
    checksum list and a signed manifest into one zstd-compressed tar, for an air gap."""
    from cairn.family.jobs import BuildOptions
    from cairn.trust.delivery import make_bundle

    opts = BuildOptions(images=tuple(image or ()), output=output)
    written = make_bundle(
        family_dir,
        opts,
        out,
        signing_key(key, passphrase_file),
        source=source,
        access=registry_access(plain_http, tls_verify, ca_file),
        part_size=_size(part_size),
        made_for=made_for,
    )
    for path in written:
        print(f"{path} {path.stat().st_size} bytes")


@app.command()
def unbundle(
    bundle_file: Annotated[
        Path,
        typer.Argument(help="The bundle (or FILE.parts of a split one).", show_default=False),
    ],
    destination: Annotated[
        str,
        typer.Option("--to", help="REGISTRY/PREFIX to push the images to.", show_default=False),
    ],
    key: Annotated[
        Path, typer.Option("--key", help="The signer's PEM public key.", show_default=False)
    ],
    plain_http: PlainHttpOpt = False,
    tls_verify: TlsVerifyOpt = True,
    ca_file: CaFileOpt = None,
    allow_rollback: Annotated[
        bool,
        typer.Option(
            "--allow-rollback",
            help="Move tags back to older images than the destination holds (refused "
            "otherwise: an older bundle would undo a newer one's fixes).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check a bundle whole (its signed manifest, every checksum, every image's signatures
    and attestations), then push its images with their digests, tags, signatures and
    attestations; nothing is pushed unless every check passes, and no tag is moved back
    to an image older than the one the destination holds."""
    from cairn.family.results import PushResult
    from cairn.trust.delivery import unbundle as run
    from cairn.trust.keys import load_public_key

    pushed = run(
        bundle_file,
        destination,
        load_public_key(key),
        access=registry_access(plain_http, tls_verify, ca_file),
        say=_say(as_json),
        allow_rollback=allow_rollback,
    )
    if as_json:
        print(dumps(PushResult(pushed)))
