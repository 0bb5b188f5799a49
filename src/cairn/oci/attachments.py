"""What is attached to images (signatures, attestations, referrers), between an OCI layout
and a registry.

They are written byte for byte through the distribution API (cairn.oci.distribution):
blobs, then the manifests an index lists (by digest), then the manifest under its tag,
so a tag never names what is not all there. skopeo would re-encode the referrers
index (Debian 12's knows no `artifactType`), and a copy per attachment costs a
process each.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from cairn.errors import ImageContentError
from cairn.oci.access import Access
from cairn.oci.distribution import Registry, split_repository
from cairn.oci.image import (
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_MANIFEST,
    Blob,
    Descriptor,
    json_blob,
    sha256_digest,
)
from cairn.oci.layout import OciLayout, Staging, attachment_tag, checked_digest
from cairn.oci.registry import RetryPolicy
from cairn.untrusted import json_object, printable


@dataclass
class Registries:
    """One client per registry host, shared by every repository on it, each reaching its
    host as `access` says (skopeo's copies of the same command are handed the same)."""

    access: Access = field(default_factory=Access)
    policy: RetryPolicy | None = None
    _clients: dict[str, Registry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, repository: str) -> tuple[Registry, str]:
        host, path = split_repository(repository)
        with self._lock:  # threads pushing images side by side share one client a host
            if host not in self._clients:
                self._clients[host] = Registry(
                    self.access.host(host), self.policy or RetryPolicy.from_env()
                )
            return self._clients[host], path

    def __enter__(self) -> Registries:
        return self

    def __exit__(self, *exc: object) -> None:
        """Closes the connections each client kept open."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()


MEDIA_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
MAX_PAYLOAD = 64 << 10  # a simple-signing payload is a few hundred bytes


@dataclass(frozen=True)
class Attachment:
    """The blobs of one attachment manifest (a .sig or .att tag's content)."""

    manifest: Blob
    blobs: tuple[Blob, ...]  # the config and the layers


def attachment(layers: list[tuple[bytes, Descriptor]]) -> Attachment:
    """An OCI manifest holding `layers` (payload, descriptor), with the image config cosign
    writes for it (no platform, the layers' digests as diff_ids): container tools copy it as
    an image."""
    config = json_blob(
        {
            "architecture": "",
            "config": {},
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [d.digest for _, d in layers]},
        },
        MEDIA_CONFIG,
    )
    manifest = json_blob(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config.descriptor.to_json(),
            "layers": [d.to_json() for _, d in layers],
        },
        MEDIA_MANIFEST,
    )
    return Attachment(manifest, (config, *(Blob(data, d) for data, d in layers)))


def signed_identity(payload: bytes) -> str | None:
    """The repository a simple-signing payload names (its docker-reference), if any."""
    try:
        doc = json_object(payload, "a signature", max_bytes=MAX_PAYLOAD)
        identity = doc["critical"]["identity"]["docker-reference"]
    except (ValueError, KeyError, TypeError):
        return None
    return identity if isinstance(identity, str) else None


def repository_of_identity(identity: str) -> str:
    """A signature's identity, REGISTRY/REPO or REGISTRY/REPO:TAG, without its tag."""
    head, sep, last = identity.rpartition("/")
    return f"{head}{sep}{last.partition(':')[0]}" if sep else identity


def names_repository(identity: str, repository: str) -> bool:
    """Whether a signature's identity is REPOSITORY itself or REPOSITORY:TAG."""
    return repository_of_identity(identity) == repository


def signatures_for(layout: OciLayout, sig: Descriptor, repository: str) -> Attachment | None:
    """The .sig manifest `sig` with only the signatures that name `repository` (itself or
    one of its tags), in their order; None when none does. Signatures made for one
    destination never travel to another."""
    doc = layout.read_json(sig.digest)
    kept = []
    for d in doc.get("layers", []):
        desc = Descriptor.from_json(d)
        if desc.media_type != MEDIA_SIMPLESIGNING or desc.size > MAX_PAYLOAD:
            continue
        data = layout.read_blob(desc.digest, MAX_PAYLOAD)
        identity = signed_identity(data)
        if identity is not None and names_repository(identity, repository):
            kept.append((data, desc))
    return attachment(kept) if kept else None


def _push_attachment(client: Registry, path: str, made: Attachment, reference: str) -> None:
    """As push_manifest, for an attachment made for this push."""
    if not client.has_manifest(path, made.manifest.descriptor.digest):
        for blob in made.blobs:
            client.upload_blob(path, blob.descriptor.digest, blob.data)
    client.put_manifest(path, reference, made.manifest.data, made.manifest.descriptor.media_type)


def push_manifest(
    client: Registry,
    path: str,
    layout: OciLayout,
    desc: Descriptor,
    reference: str,
    *,
    there: frozenset[str] = frozenset(),
) -> None:
    """The manifest (or index) `desc` to PATH:REFERENCE, what it names first. A registry
    holds a manifest only once it holds its blobs: one already there sends none of them
    again, and for one that is not, the blobs are sent without asking about each (but
    those in `there`, known to be in PATH), which a registry that checks a password on
    every request (htpasswd's bcrypt) pays for by the request."""
    data = layout.read_blob(desc.digest)
    if not client.has_manifest(path, desc.digest):
        doc = layout.read_json(desc.digest)  # what it names: read only when it is sent
        if desc.media_type == MEDIA_INDEX:
            for child in doc.get("manifests", []):
                child_desc = Descriptor.from_json(child)
                push_manifest(client, path, layout, child_desc, child_desc.digest, there=there)
        else:
            for blob in [doc["config"], *doc.get("layers", [])]:
                if blob["digest"] not in there:
                    client.upload_blob(path, blob["digest"], layout.read_blob(blob["digest"]))
    elif reference == desc.digest:
        return
    client.put_manifest(path, reference, data, desc.media_type)


def push_attachments(
    layout: OciLayout, name: str, repository: str, registries: Registries, *, as_kept: bool
) -> list[str]:
    """Every attachment of image `name` in the layout, to REPOSITORY:TAG; returns the tags.
    Signatures go with only those that name REPOSITORY (a store signed for several
    destinations sends each its own), unless `as_kept` (a bundle's, chosen when it was
    made, go as they are)."""
    client, path = registries.of(repository)
    pushed = []
    for tag, desc in sorted(layout.attachments(name).items()):
        if tag.endswith(".sig") and not as_kept:
            made = signatures_for(layout, desc, repository)
            if made is None:
                continue
            _push_attachment(client, path, made, tag)
        else:
            push_manifest(client, path, layout, desc, tag)
        pushed.append(tag)
    return pushed


@dataclass(frozen=True)
class Fetched:
    """A manifest read from a registry, with the blobs it names (an index's manifests in
    turn), ready to stage into a layout."""

    descriptor: Descriptor
    blobs: tuple[Blob, ...]


MAX_CHILDREN = 64  # an index's manifests: platforms, or an image's referrers
MAX_LAYERS = 1024  # an attachment's layers: a signature per destination and tag, SBOMs


def fetch(
    client: Registry, path: str, reference: str, *, with_blobs: bool = True, depth: int = 0
) -> Fetched | None:
    """REPOSITORY:REFERENCE with everything under it (without the blobs manifests name unless
    `with_blobs`), or None when it is not there. The media type is the document's own, not
    the registry's word for it; a document that is not one is refused. What is asked for by
    digest must hash to it, an index holds manifests only (one level, at most 64), and a
    blob must hash to its digest: a registry cannot lead the reader on for ever."""
    got = client.get_manifest(path, reference)
    if got is None:
        return None
    header_type, data = got
    if reference.startswith("sha256:") and sha256_digest(data) != reference:
        raise ImageContentError(
            f"{client.host}/{path}@{reference} answered with a document of another digest.",
            "Try: check what the registry holds there (skopeo inspect --raw).",
        )
    try:
        doc = json_object(data, f"{reference}")
        media_type = printable(doc.get("mediaType") or header_type, 200)
        children = doc.get("manifests")
        named = None if children is not None else [doc["config"], *doc.get("layers", [])]
        digests = [checked_digest(d["digest"]) for d in (children or named or [])]
        if children is not None and (depth > 0 or len(children) > MAX_CHILDREN):
            raise ValueError("an index of indexes, or one too long")
        if not isinstance(children if children is not None else named, list):
            raise TypeError("no list")
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ImageContentError(
            f"{client.host}/{path}:{printable(reference, 80)} is not an OCI manifest or index.",
            "Try: check what the registry holds there (skopeo inspect --raw).",
        ) from None
    descriptor = Descriptor(media_type, sha256_digest(data), len(data))
    blobs: list[Blob] = [Blob(data, descriptor)]
    if children is not None:
        for digest in digests:
            below = fetch(client, path, digest, with_blobs=with_blobs, depth=depth + 1)
            if below is not None:
                blobs += below.blobs
    elif with_blobs:
        blobs += _fetch_blobs(client, path, reference, named or [], digests)
    return Fetched(descriptor, tuple(blobs))


def _fetch_blobs(
    client: Registry, path: str, reference: str, named: list[Any], digests: list[str]
) -> list[Blob]:
    """The blobs a manifest names, each once (however often it is listed), each hashing
    to its digest; no more than an attachment holds."""
    if len(digests) > MAX_LAYERS:
        raise ImageContentError(
            f"{client.host}/{path}:{printable(reference, 80)} lists {len(digests)} blobs, "
            f"more than an attachment holds ({MAX_LAYERS}).",
            "Try: check what the registry holds there (skopeo inspect --raw).",
        )
    blobs: list[Blob] = []
    fetched: set[str] = set()
    for d, digest in zip(named, digests, strict=True):
        if digest in fetched:
            continue
        fetched.add(digest)
        content = client.get_blob(path, digest)
        if content is None:
            continue
        if sha256_digest(content) != digest:
            raise ImageContentError(
                f"{client.host}/{path}: the blob {digest} answered is another one.",
                "Try: check what the registry holds there.",
            )
        media_type = printable(d.get("mediaType", ""), 200)
        blobs.append(Blob(content, Descriptor(media_type, digest, len(content))))
    return blobs


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
