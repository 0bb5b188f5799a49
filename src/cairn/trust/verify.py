"""Verifying an image against a public key, with nothing but where the image is kept.

What is checked, for the image's index and every platform's manifest:
- a signature by the key (sha256-HEX.sig) that names that very digest;
- attestations by the key (sha256-HEX.att) for each platform: the SBOMs (SPDX,
  CycloneDX) and the SLSA provenance at least, each statement's subject the
  platform's manifest digest;
- the provenance restates the manifest's recorded annotations (the build's input
  digests, the package versions' digest, the parent's digest, the source date) and
  its platform;
- the referrers tag schema's index lists the same attestations, each referrer's
  subject the platform's manifest;
- every manifest read hashes to its digest.
Each check is reported; the first that fails is named.
"""

from __future__ import annotations

from typing import Any

from cairn.errors import CairnError
from cairn.oci.image import Blob, Descriptor
from cairn.oci.layout import OciLayout, attachment_tag
from cairn.trust import dsse
from cairn.trust.keys import PublicKey
from cairn.trust.predicates import CYCLONEDX, NAMES, RECORDED, SLSA_PROVENANCE, SPDX
from cairn.trust.results import Check
from cairn.trust.signing import attached_layers
from cairn.trust.sigstore import (
    ANN_REFERRER_PREDICATE,
    check_signature,
)
from cairn.untrusted import printable

REQUIRED = (SPDX, CYCLONEDX, SLSA_PROVENANCE)


def _layers(layout: OciLayout, attached: dict[str, Descriptor], tag: str) -> list[Blob] | None:
    if tag not in attached:
        return None
    try:
        return attached_layers(layout, attached[tag])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, CairnError):
        return []  # damaged: nothing in it counts


def _intact(layout: OciLayout, digest: str) -> bool:
    try:
        layout.check_blob(digest)
    except (OSError, CairnError):
        return False
    return True


def _blobs(layout: OciLayout, manifest: Descriptor) -> Check:
    """Every blob the platform's manifest names (its config and layers) is there, a regular
    file, and hashes to its digest: a replaced layer is found here, not at the customer."""
    try:
        doc = layout.read_json(manifest.digest)
        blobs = [Descriptor.from_json(d) for d in [doc["config"], *list(doc.get("layers", []))]]
    except (KeyError, TypeError, AttributeError, CairnError):
        return Check(manifest.digest, "blobs", False, "the manifest is damaged")
    for blob in blobs:
        try:
            layout.check_blob(blob.digest, blob.size)
        except (OSError, CairnError):
            return Check(manifest.digest, "blobs", False, f"{blob.digest} is missing or damaged")
    return Check(manifest.digest, "blobs", True, f"{len(blobs)} blobs match their digests")


def _signature(
    layout: OciLayout, attached: dict[str, Descriptor], digest: str, key: PublicKey
) -> Check:
    subject = digest
    layers = _layers(layout, attached, attachment_tag(digest, "sig"))
    if layers is None:
        return Check(subject, "signature", False, f"no signature ({attachment_tag(digest, 'sig')})")
    names, identities = [], []
    for layer in layers:
        found = check_signature(key, layer.data, dict(layer.descriptor.annotations))
        if found.by_key and found.digest == digest:
            identities.append(found.repository)
        elif found.by_key:
            names.append(found.digest)
    if identities:
        return Check(subject, "signature", True, f"signed for {', '.join(identities)}")
    if names:
        return Check(subject, "signature", False, f"the key's signature names {names[0]}")
    return Check(subject, "signature", False, f"none of {len(layers)} signatures is the key's")


def _provenance(statement: dict[str, Any], manifest: Descriptor) -> Check:
    predicate = statement.get("predicate", {})
    build = predicate.get("buildDefinition", {})
    said = build.get("internalParameters", {}).get("annotations", {})
    recorded = {k: v for k, v in manifest.annotations if k in RECORDED}
    platform = manifest.platform.name if manifest.platform else ""
    if build.get("externalParameters", {}).get("platform") != platform:
        return Check(
            manifest.digest, "provenance", False, f"names another platform than {platform}"
        )
    for k in sorted(set(recorded) | set(said)):
        if said.get(k) != recorded.get(k):
            return Check(
                manifest.digest,
                "provenance",
                False,
                f"says {k} = {said.get(k)!r}, the manifest records {recorded.get(k)!r}",
            )
    return Check(manifest.digest, "provenance", True, f"{len(recorded)} recorded inputs match")


def _attestations(
    layout: OciLayout, attached: dict[str, Descriptor], manifest: Descriptor, key: PublicKey
) -> list[Check]:
    subject = manifest.digest
    tag = attachment_tag(subject, "att")
    layers = _layers(layout, attached, tag)
    if layers is None:
        return [Check(subject, "attestations", False, f"no attestations ({tag})")]
    checks: list[Check] = []
    found: dict[str, dict[str, Any]] = {}
    for layer in layers:
        opened = dsse.open_envelope(key, layer.data)
        if not opened.signed:
            continue
        kind = NAMES.get(opened.predicate_type, opened.predicate_type)
        if opened.subject_digests != [subject]:
            names = ", ".join(opened.subject_digests) or "nothing"
            checks.append(Check(subject, kind, False, f"the statement's subject is {names}"))
            continue
        found[opened.predicate_type] = opened.statement
    for kind in REQUIRED:
        if kind not in found and not any(c.check == NAMES[kind] for c in checks):
            checks.append(Check(subject, NAMES[kind], False, "no statement signed by the key"))
    for kind, statement in sorted(found.items()):
        checks.append(Check(subject, NAMES.get(kind, kind), True, "signed, subject matches"))
        if kind == SLSA_PROVENANCE:
            checks.append(_provenance(statement, manifest))
    checks.append(_referrers(layout, attached, manifest, layers))
    return checks


def _referrers(
    layout: OciLayout, attached: dict[str, Descriptor], manifest: Descriptor, layers: list[Blob]
) -> Check:
    subject = manifest.digest
    tag = attachment_tag(subject, "")
    if tag not in attached:
        return Check(subject, "referrers", False, f"no referrers index ({tag})")
    try:
        index = layout.read_json(attached[tag].digest)
        listed = set()
        for entry in index.get("manifests", []):
            doc = layout.read_json(entry["digest"])
            if doc.get("subject", {}).get("digest") != subject:
                return Check(subject, "referrers", False, f"{entry['digest']} refers elsewhere")
            if entry.get("annotations", {}).get(ANN_REFERRER_PREDICATE) is None:
                return Check(subject, "referrers", False, f"{entry['digest']} names no type")
            listed |= {d["digest"] for d in doc.get("layers", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, CairnError):
        return Check(subject, "referrers", False, "the referrers index is damaged")
    missing = {b.descriptor.digest for b in layers} - listed
    if missing:
        return Check(subject, "referrers", False, f"{len(missing)} attestations not listed")
    return Check(subject, "referrers", True, f"{len(listed)} attestations listed")


def verify_image(
    layout: OciLayout, name: str, key: PublicKey, *, blobs: bool = True
) -> list[Check]:
    """Every check of image `name` in the layout, in order: index, then each platform;
    with `blobs`, every config and layer is hashed too (a registry's image is read without
    its layers). A damaged layout gives failed checks, never an exception."""
    try:
        index = layout.refs()[name]
        attached = layout.attachments(name)
        manifests = layout.platform_manifests(name)
    except (KeyError, TypeError, AttributeError, CairnError) as e:
        detail = e.message if isinstance(e, CairnError) else "its index is damaged"
        return [Check(name, "index", False, printable(detail))]
    checks = []
    if not manifests:
        # cairn signs and attests indexes: anything else has no platform to attest
        checks.append(
            Check(index.digest, "index", False, f"not an image index ({index.media_type})")
        )
    for desc in (index, *manifests):
        if not _intact(layout, desc.digest):
            checks.append(Check(desc.digest, "digest", False, "the manifest's bytes differ"))
        checks.append(_signature(layout, attached, desc.digest, key))
    for manifest in manifests:
        if blobs:
            checks.append(_blobs(layout, manifest))
        checks += _attestations(layout, attached, manifest, key)
    return checks


def first_failure(checks: list[Check]) -> Check | None:
    return next((c for c in checks if not c.ok), None)
