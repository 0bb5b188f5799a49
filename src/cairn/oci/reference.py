"""Image references in the containers/skopeo transport syntax."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cairn.errors import ImageRefError

TRANSPORTS = ("oci", "docker-archive", "docker", "docker-daemon", "dir")


@dataclass(frozen=True)
class ImageRef:
    """transport:target[:name] as skopeo writes it.

    - oci:DIR[:NAME]             target=DIR, name=NAME (the ref.name in index.json)
    - docker-archive:FILE[:REF]  target=FILE, name=REF (repo:tag inside the archive)
    - docker://REGISTRY/REPO:TAG target=the rest
    - docker-daemon:REPO:TAG     target=the rest
    - dir:ROOTFS                 target=ROOTFS (a plain unpacked root file system)
    """

    transport: str
    target: str
    name: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.target)

    def __str__(self) -> str:
        if self.transport == "docker":
            return f"docker://{self.target}"
        return f"{self.transport}:{self.target}" + (f":{self.name}" if self.name else "")


def parse_ref(text: str) -> ImageRef:
    transport, sep, rest = text.partition(":")
    if not sep or transport not in TRANSPORTS:
        raise ImageRefError(
            f"'{text}' is not an image reference.",
            "Try one of: oci:DIR[:NAME], docker-archive:FILE, docker://REGISTRY/REPO:TAG, "
            "docker-daemon:REPO:TAG, dir:ROOTFS.",
        )
    if transport == "docker":
        if not rest.startswith("//") or len(rest) <= 2:
            raise ImageRefError(
                f"'{text}' is not a registry reference.", "Try: docker://REGISTRY/REPO:TAG"
            )
        return ImageRef("docker", rest[2:])
    if not rest:
        raise ImageRefError(f"'{text}' names no {transport} location.", f"Try: {transport}:PATH")
    if transport in ("oci", "docker-archive"):
        target, _, name = rest.partition(":")
        return ImageRef(transport, target, name or None)
    return ImageRef(transport, rest)


def is_local(registry: str) -> bool:
    """A registry on this machine (localhost, 127.0.0.1), which plain HTTP is fine for."""
    host = registry.removeprefix("//").split("/", 1)[0].rsplit(":", 1)[0]
    return host in ("localhost", "127.0.0.1")
