"""The sigstore (cosign) formats that registries carry next to an image.

A signature of manifest sha256:HEX lives in the image's repository under the tag
`sha256-HEX.sig`: an OCI manifest whose layers are simple-signing payloads
(application/vnd.dev.cosign.simplesigning.v1+json), each with its base64 ECDSA
signature in the annotation dev.cosignproject.cosign/signature. containers/image
(skopeo, podman) reads them there when registries.d says use-sigstore-attachments,
and so does cosign. Attestations live under `sha256-HEX.att` the same way, one DSSE
envelope per layer (application/vnd.dsse.envelope.v1+json, its predicate type in an
annotation). These are pure functions: documents in, documents out.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cairn.oci.attachments import (
    MEDIA_SIMPLESIGNING,
    Attachment,
    attachment,
)
from cairn.oci.image import (
    MEDIA_INDEX,
    MEDIA_MANIFEST,
    Blob,
    Descriptor,
    canonical_json,
    json_blob,
    sha256_digest,
)
from cairn.trust.keys import PublicKey, SigningKey

MEDIA_DSSE = "application/vnd.dsse.envelope.v1+json"
ANN_SIGNATURE = "dev.cosignproject.cosign/signature"
ANN_PREDICATE_TYPE = "predicateType"
SIGNATURE_TYPE = "cosign container image signature"
# what a referrer says of itself (as BuildKit's and Docker's attestations say it)
ANN_REFERRER_PREDICATE = "in-toto.io/predicate-type"


def simple_signing_payload(repository: str, digest: str) -> bytes:
    """What is signed: the repository the image was pushed to and its manifest digest, in
    the layout cosign writes (containers/image accepts either key order)."""
    doc = {
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return canonical_json(doc)


def signature_layer(key: SigningKey, repository: str, digest: str) -> tuple[bytes, Descriptor]:
    payload = simple_signing_payload(repository, digest)
    signature = base64.b64encode(key.sign(payload)).decode()
    return payload, Descriptor(
        MEDIA_SIMPLESIGNING,
        sha256_digest(payload),
        len(payload),
        annotations=((ANN_SIGNATURE, signature),),
    )


@dataclass(frozen=True)
class SignatureCheck:
    """One simple-signing layer, judged against a key and the digest it should name."""

    by_key: bool  # the signature verifies with the key
    digest: str  # the manifest digest the payload names
    repository: str  # the docker-reference the payload names


def check_signature(key: PublicKey, payload: bytes, annotations: dict[str, str]) -> SignatureCheck:
    try:
        signature = base64.b64decode(annotations.get(ANN_SIGNATURE, ""), validate=True)
    except ValueError:
        signature = b""
    by_key = bool(signature) and key.verifies(signature, payload)
    try:
        critical: dict[str, Any] = json.loads(payload)["critical"]
        if critical["type"] != SIGNATURE_TYPE:
            return SignatureCheck(False, "", "")
        digest = str(critical["image"]["docker-manifest-digest"])
        repository = str(critical["identity"]["docker-reference"])
    except (ValueError, KeyError, TypeError):
        return SignatureCheck(False, "", "")
    return SignatureCheck(by_key, digest, repository)


def merged_layers(
    existing: list[tuple[bytes, Descriptor]], new: tuple[bytes, Descriptor], key: PublicKey
) -> list[tuple[bytes, Descriptor]] | None:
    """The existing .sig layers plus `new`, as cosign appends a signer's signature to those
    of others; None when a layer already signs the same payload with the same key (nothing
    to write, and signing twice changes nothing)."""
    payload, _ = new
    for data, desc in existing:
        if data == payload and check_signature(key, data, dict(desc.annotations)).by_key:
            return None
    return [*existing, new]


def attestation_layer(envelope: bytes, predicate_type: str) -> tuple[bytes, Descriptor]:
    """An .att layer: one DSSE envelope, its predicate type beside it, as cosign writes."""
    return envelope, Descriptor(
        MEDIA_DSSE,
        sha256_digest(envelope),
        len(envelope),
        annotations=((ANN_SIGNATURE, ""), (ANN_PREDICATE_TYPE, predicate_type)),
    )


def referrer(subject: Descriptor, layer: tuple[bytes, Descriptor]) -> Attachment:
    """An OCI 1.1 referrer of `subject`: one attestation layer in an artifact manifest whose
    `subject` is the image manifest, found through the registry's referrers API, or through
    the tag sha256-HEX (the referrers tag schema) where the registry has none."""
    data, desc = layer
    made = attachment([(data, desc)])
    doc = json.loads(made.manifest.data)
    predicate_type = dict(desc.annotations).get(ANN_PREDICATE_TYPE, "")
    doc["artifactType"] = MEDIA_DSSE
    doc["subject"] = {
        "mediaType": subject.media_type,
        "digest": subject.digest,
        "size": subject.size,
    }
    doc["annotations"] = {ANN_REFERRER_PREDICATE: predicate_type}
    return Attachment(json_blob(doc, MEDIA_MANIFEST), made.blobs)


def referrers_index(referrers: list[Attachment]) -> Blob:
    """The referrers tag schema's index: each referrer's descriptor with its artifactType
    and annotations, as a registry's referrers API would answer."""
    entries = []
    for r in referrers:
        doc = json.loads(r.manifest.data)
        entry = r.manifest.descriptor.to_json()
        entry["artifactType"] = doc["artifactType"]
        entry["annotations"] = doc["annotations"]
        entries.append(entry)
    return json_blob(
        {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": entries}, MEDIA_INDEX
    )
