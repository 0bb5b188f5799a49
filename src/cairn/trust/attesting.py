"""Attestations of images where they are kept (cairn's OCI layout), for a destination.

For every platform of an image: one DSSE envelope per predicate (SBOMs, provenance,
VEX), signed with the key and naming the platform's manifest digest as the subject.
They are kept twice, as the two ways tools find them: cosign's `sha256-HEX.att` tag (one
manifest, one layer per envelope) and OCI 1.1 referrers (one artifact manifest per
envelope whose `subject` is the image manifest, listed by the index the referrers tag
schema keeps under `sha256-HEX`). Envelopes of other signers in an .att are kept; this
key's are replaced when what they state changed, and left alone when it did not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cairn.family.spec import Family
from cairn.measure.layer_reading import shared_layers
from cairn.oci.image import Blob, Descriptor, canonical_json
from cairn.oci.layout import OciLayout, Staging, attachment_tag
from cairn.trust import dsse
from cairn.trust.keys import SigningKey
from cairn.trust.predicates import image_predicates
from cairn.trust.results import Attestation, SignResult
from cairn.trust.signing import attached_layers, sign_images, store
from cairn.trust.sigstore import (
    attestation_layer,
    referrer,
    referrers_index,
)


def _statements(key: SigningKey, layers: list[Blob]) -> tuple[list[Blob], set[bytes]]:
    """The layers another key signed, and the statements this key signed (as JSON)."""
    others, mine = [], set()
    for layer in layers:
        opened = dsse.open_envelope(key.public, layer.data)
        if opened.signed:
            mine.add(canonical_json(opened.statement))
        else:
            others.append(layer)
    return others, mine


def _store_referrers(stage: Staging, name: str, subject: Descriptor, layers: list[Blob]) -> None:
    made = [referrer(subject, (b.data, b.descriptor)) for b in layers]
    for r in made:
        for blob in (*r.blobs, r.manifest):
            stage.add(blob)
    index = stage.add(referrers_index(made))
    stage.attach(name, attachment_tag(subject.digest, ""), index)


def attest_images(
    family: Family,
    layout: OciLayout,
    repositories: Iterable[tuple[str, str]],
    key: SigningKey,
    *,
    advisories: list[Any] | None = None,
) -> list[Attestation]:
    done: list[Attestation] = []
    with layout.staging() as stage:
        for name, repository in repositories:
            image = family.image(name)
            attached = layout.attachments(name)
            for manifest in layout.platform_manifests(name):
                predicates = image_predicates(
                    family, image, layout, manifest, repository=repository, advisories=advisories
                )
                statements = [
                    dsse.statement(repository, manifest.digest, p.predicate_type, p.predicate)
                    for p in predicates
                ]
                tag = attachment_tag(manifest.digest, "att")
                existing = attached_layers(layout, attached[tag]) if tag in attached else []
                others, mine = _statements(key, existing)
                changed = mine != {canonical_json(s) for s in statements}
                if changed:
                    ours = [
                        Blob(*attestation_layer(dsse.envelope(key, s), s["predicateType"]))
                        for s in statements
                    ]
                    layers = others + ours
                    store(stage, name, tag, layers)
                    _store_referrers(stage, name, manifest, layers)
                done.append(
                    Attestation(
                        name,
                        manifest.platform.name if manifest.platform else "",
                        manifest.digest,
                        tag,
                        [p.predicate_type for p in predicates],
                        changed,
                    )
                )
    return done


def sign_and_attest(
    family: Family,
    layout: OciLayout,
    names: Iterable[str],
    destination: str,
    key: SigningKey,
    *,
    advisories: list[Any] | None = None,
) -> SignResult:
    """Sign and attest each image for DESTINATION/NAME: what `cairn sign` and
    `cairn push --sign-key` do before anything is pushed."""
    repositories = [(n, f"{destination}/{n}") for n in names]
    tagged = [(n, r, family.image(n).tags) for n, r in repositories]
    signatures = sign_images(layout, tagged, key)
    with shared_layers():  # a parent's layers are read once for all its children
        attestations = attest_images(family, layout, repositories, key, advisories=advisories)
    return SignResult(key.public.fingerprint, signatures, attestations)
