"""What is attached to images (signatures, attestations, referrers), between an OCI layout
and a registry.

They are written byte for byte through the distribution API (cairn.oci.distribution):
blobs, then the manifests an index lists (by digest), then the manifest under its tag,
so a tag never names what is not all there. skopeo would re-encode the referrers
index (Debian 12's knows no `artifactType`), and a copy per attachment costs a
process each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from cairn.errors import ImageContentError
from cairn.oci.distribution import Registry, split_repository
from cairn.oci.image import MEDIA_INDEX, Blob, Descriptor, sha256_digest
from cairn.oci.layout import OciLayout, Staging, attachment_tag, checked_digest
from cairn.oci.registry import RetryPolicy


@dataclass
class Registries:
    """One client per registry host, shared by every repository on it."""

    insecure: bool
    policy: RetryPolicy | None = None
    _clients: dict[str, Registry] = field(default_factory=dict)

    def of(self, repository: str) -> tuple[Registry, str]:
        host, path = split_repository(repository)
        if host not in self._clients:
            self._clients[host] = Registry(
                host, self.insecure, self.policy or RetryPolicy.from_env()
            )
        return self._clients[host], path


def _push_manifest(
    client: Registry, path: str, layout: OciLayout, desc: Descriptor, reference: str
) -> None:
    doc = layout.read_json(desc.digest)
    if desc.media_type == MEDIA_INDEX:
        for child in doc.get("manifests", []):
            _push_manifest(client, path, layout, Descriptor.from_json(child), child["digest"])
    else:
        for blob in [doc["config"], *doc.get("layers", [])]:
            data = layout.blob_path(blob["digest"]).read_bytes()
            client.put_blob(path, blob["digest"], data)
    client.put_manifest(
        path, reference, layout.blob_path(desc.digest).read_bytes(), desc.media_type
    )


def push_attachments(
    layout: OciLayout, name: str, repository: str, registries: Registries
) -> list[str]:
    """Every attachment of image `name` in the layout, to REPOSITORY:TAG; returns the tags."""
    client, path = registries.of(repository)
    attached = layout.attachments(name)
    for tag, desc in sorted(attached.items()):
        _push_manifest(client, path, layout, desc, tag)
    return sorted(attached)


@dataclass(frozen=True)
class Fetched:
    """A manifest read from a registry, with the blobs it names (an index's manifests in
    turn), ready to stage into a layout."""

    descriptor: Descriptor
    blobs: tuple[Blob, ...]


def fetch(
    client: Registry, path: str, reference: str, *, with_blobs: bool = True
) -> Fetched | None:
    """REPOSITORY:REFERENCE with everything under it (without the blobs manifests name unless
    `with_blobs`), or None when it is not there. The media type is the document's own, not
    the registry's word for it; a document that is not one is refused."""
    got = client.get_manifest(path, reference)
    if got is None:
        return None
    header_type, data = got
    try:
        doc = json.loads(data)
        media_type = str(doc.get("mediaType") or header_type)
        children = doc.get("manifests")
        named = None if children is not None else [doc["config"], *doc.get("layers", [])]
        digests = [checked_digest(d["digest"]) for d in (children or named or [])]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ImageContentError(
            f"{client.host}/{path}:{reference} is not an OCI manifest or index.",
            "Try: check what the registry holds there (skopeo inspect --raw).",
        ) from None
    descriptor = Descriptor(media_type, sha256_digest(data), len(data))
    blobs: list[Blob] = [Blob(data, descriptor)]
    if children is not None:
        for digest in digests:
            below = fetch(client, path, digest, with_blobs=with_blobs)
            if below is not None:
                blobs += below.blobs
    elif with_blobs:
        for d, digest in zip(named or [], digests, strict=True):
            content = client.get_blob(path, digest)
            if content is not None:
                blobs.append(
                    Blob(content, Descriptor(str(d.get("mediaType", "")), digest, len(content)))
                )
    return Fetched(descriptor, tuple(blobs))


def stage_fetched(stage: Staging, name: str, tag: str, fetched: Fetched) -> None:
    """Keep what `fetch` brought as image `name`'s attachment `tag`; every blob is stored
    under the digest of its bytes, so a blob the registry changed cannot pass for another."""
    for blob in fetched.blobs:
        stage.add(
            Blob(
                blob.data,
                Descriptor(blob.descriptor.media_type, sha256_digest(blob.data), len(blob.data)),
            )
        )
    stage.attach(name, tag, fetched.descriptor)


def attachment_tags(digest: str) -> tuple[str, ...]:
    """The tags what is attached to `digest` goes under: its signatures (cosign's .sig),
    attestations (.att) and the referrers tag schema's index."""
    return tuple(attachment_tag(digest, kind) for kind in ("sig", "att", ""))


def fetch_attachments(
    stage: Staging, client: Registry, path: str, name: str, digests: list[str]
) -> None:
    """Whatever the registry holds attached to `digests`, staged as image `name`'s
    attachments (asked for by tag: a registry's tag list may come in pages)."""
    for digest in digests:
        for tag in attachment_tags(digest):
            fetched = fetch(client, path, tag)
            if fetched is not None:
                stage_fetched(stage, name, tag, fetched)
