"""What the trust commands return (keygen, sign, verify); the same types are their JSON
output and schema (cairn.output)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field
from pydantic.dataclasses import dataclass


@dataclass(frozen=True)
class KeygenResult:
    SCHEMA_VERSION: ClassVar[int] = 1
    private_key: Annotated[str, Field(description="The encrypted private key (mode 0600).")]
    public_key: Annotated[str, Field(description="The PEM public key, to give verifiers.")]
    fingerprint: Annotated[str, Field(description="sha256 of the DER public key.")]


@dataclass(frozen=True)
class Signature:
    image: Annotated[str, Field(description="Image name.")]
    repository: Annotated[
        str,
        Field(description="The docker-reference signed: REGISTRY/PREFIX/NAME, or with :TAG."),
    ]
    digest: Annotated[str, Field(description="The manifest or index digest signed.")]
    tag: Annotated[str, Field(description="Where the signature is kept: sha256-HEX.sig.")]
    added: Annotated[
        bool, Field(description="Signed now; false when this key had signed it already.")
    ]


@dataclass(frozen=True)
class Attestation:
    image: Annotated[str, Field(description="Image name.")]
    platform: Annotated[str, Field(description="OCI platform, e.g. linux/arm64.")]
    subject: Annotated[str, Field(description="The platform manifest's digest: the subject.")]
    tag: Annotated[str, Field(description="Where cosign finds them: sha256-HEX.att.")]
    predicate_types: list[str]
    added: Annotated[
        bool, Field(description="Written now; false when this key had attested the same.")
    ]


@dataclass(frozen=True)
class SignResult:
    SCHEMA_VERSION: ClassVar[int] = 1
    key: Annotated[str, Field(description="The signing key's public fingerprint.")]
    signatures: list[Signature]
    attestations: list[Attestation]


@dataclass(frozen=True)
class Check:
    subject: Annotated[str, Field(description="The digest checked (index or manifest).")]
    check: Annotated[
        str,
        Field(description="signature, digest, SPDX, CycloneDX, SLSA provenance, OpenVEX, "
              "provenance (its inputs against the manifest), referrers."),
    ]  # fmt: skip
    ok: bool
    detail: Annotated[str, Field(description="What was found.")]


@dataclass(frozen=True)
class VerifiedImage:
    reference: Annotated[str, Field(description="What was verified, as given.")]
    digest: Annotated[str, Field(description="The image's index digest.")]
    checks: list[Check]


@dataclass(frozen=True)
class VerifyResult:
    SCHEMA_VERSION: ClassVar[int] = 1
    key: Annotated[str, Field(description="The public key's fingerprint.")]
    verified: Annotated[bool, Field(description="Every check of every image passed.")]
    images: list[VerifiedImage]
