"""Pure functions that build OCI configs, manifests and indexes (image-spec v1.1).

Every document is serialised canonically (sorted keys, no spaces) so that the
same inputs always give the same bytes and therefore the same digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cairn.errors import ImageContentError
from cairn.platforms import Platform, known_platforms

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

ANN_CREATED = "org.opencontainers.image.created"
ANN_SOURCE = "org.opencontainers.image.source"
ANN_REVISION = "org.opencontainers.image.revision"
ANN_TITLE = "org.opencontainers.image.title"
ANN_DESCRIPTION = "org.opencontainers.image.description"
ANN_BASE_NAME = "org.opencontainers.image.base.name"
ANN_BASE_DIGEST = "org.opencontainers.image.base.digest"
ANN_REF_NAME = "org.opencontainers.image.ref.name"
# What a build measured, kept so that an image that is not rebuilt is still described.
ANN_PACKAGES = "vnd.cairn.packages"
ANN_FILES = "vnd.cairn.files"
ANN_UNCOMPRESSED = "vnd.cairn.uncompressed-bytes"


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def platform_of(obj: dict[str, Any]) -> Platform | None:
    """The Platform an OCI `platform` object names, if cairn knows it."""
    named = {k: obj[k] for k in ("architecture", "os", "variant") if k in obj}
    for p in known_platforms().values():
        if p.oci() == named:
            return p
    return None


_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            out["platform"] = self.platform.oci()
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Descriptor:
        """A descriptor as a document gives it, every field of the type the OCI spec says;
        ImageContentError for anything else (a document from outside may hold anything)."""
        try:
            media_type, digest, size = obj["mediaType"], obj["digest"], obj["size"]
            platform = obj.get("platform")
            annotations = obj.get("annotations", {})
            if not (
                isinstance(media_type, str)
                and isinstance(digest, str)
                and _SHA256.match(digest)
                and type(size) is int
                and 0 <= size < 1 << 62
                and (platform is None or isinstance(platform, dict))
                and isinstance(annotations, dict)
                and all(isinstance(v, str) for v in annotations.values())
            ):
                raise TypeError
        except (KeyError, TypeError, AttributeError):
            raise ImageContentError(
                f"A document holds a descriptor that is not one: {str(obj)[:120]!r}.",
                "Try: copy the image again from a source you trust.",
            ) from None
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            platform=platform_of(platform) if platform is not None else None,
            annotations=tuple(sorted(annotations.items())),
        )


@dataclass(frozen=True)
class Blob:
    """A JSON document ready to store: its bytes and the descriptor that names them."""

    data: bytes
    descriptor: Descriptor


def json_blob(obj: Any, media_type: str, **kw: Any) -> Blob:
    data = canonical_json(obj)
    return Blob(data, Descriptor(media_type, sha256_digest(data), len(data), **kw))


@dataclass(frozen=True)
class LayerInfo:
    """A compressed layer blob and what its config entry needs."""

    digest: str
    size: int
    diff_id: str
    uncompressed_size: int
    created_by: str
    comment: str = ""


@dataclass(frozen=True)
class RunConfig:
    """The parts of an image config a container runtime reads."""

    env: tuple[tuple[str, str], ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    user: str | None = None
    workdir: str | None = None
    labels: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Env": [f"{k}={v}" for k, v in self.env]}
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.user:
            out["User"] = self.user
        if self.workdir:
            out["WorkingDir"] = self.workdir
        if self.labels:
            out["Labels"] = dict(self.labels)
        return out


def image_config(
    platform: Platform, layers: tuple[LayerInfo, ...], created: int, run: RunConfig
) -> Blob:
    obj: dict[str, Any] = {
        "created": rfc3339(created),
        "architecture": platform.architecture,
        "os": platform.os,
        "config": run.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created": rfc3339(created), "created_by": layer.created_by}
            | ({"comment": layer.comment} if layer.comment else {})
            for layer in layers
        ],
    }
    if platform.variant:
        obj["variant"] = platform.variant
    return json_blob(obj, MEDIA_CONFIG)


def image_manifest(
    platform: Platform,
    config: Descriptor,
    layers: tuple[LayerInfo, ...],
    annotations: tuple[tuple[str, str], ...],
) -> Blob:
    obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.to_json(),
        "layers": [
            {"mediaType": MEDIA_LAYER_GZIP, "digest": layer.digest, "size": layer.size}
            for layer in layers
        ],
    }
    if annotations:
        obj["annotations"] = dict(annotations)
    return json_blob(obj, MEDIA_MANIFEST, platform=platform, annotations=annotations)


def image_index(
    manifests: tuple[Descriptor, ...], annotations: tuple[tuple[str, str], ...]
) -> Blob:
    """An index with one manifest per platform, in a stable (platform-sorted) order."""
    ordered = sorted(manifests, key=lambda d: d.platform.name if d.platform else "")
    obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [d.to_json() for d in ordered],
    }
    if annotations:
        obj["annotations"] = dict(annotations)
    return json_blob(obj, MEDIA_INDEX, annotations=annotations)
