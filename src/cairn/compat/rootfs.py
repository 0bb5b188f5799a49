"""Root file systems to look into: a directory as it is, an image unpacked once.

Paths are resolved inside the root the way the target's own kernel would see
them from a chroot: absolute symbolic links restart at the root, and a chain of
more than 40 links is a loop (the kernel's ELOOP), reported, never followed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from cairn.errors import ImageRefError
from cairn.oci import skopeo
from cairn.oci.layout import OciLayout
from cairn.oci.reference import parse_ref
from cairn.oci.select import select_manifest
from cairn.oci.unpack import unpack_layers
from cairn.platforms import Platform
from cairn.scratch import scratch_dir

MAX_LINKS = 40


class LinkLoop(Exception):
    """A path whose symbolic links do not end."""


class RootFs:
    def __init__(self, root: Path) -> None:
        self.root = root

    def resolve(self, path: str) -> Path | None:
        """The host path of `path` inside the root, links followed; None if it is not there."""
        parts = list(PurePosixPath("/", path).parts[1:])
        current = PurePosixPath("/")
        hops = 0
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                current = current.parent
                continue
            candidate = current / part
            host = self.root / candidate.relative_to("/")
            if host.is_symlink():
                hops += 1
                if hops > MAX_LINKS:
                    raise LinkLoop(f"{path}: too many levels of symbolic links")
                target = PurePosixPath(host.readlink())
                if target.is_absolute():
                    current = PurePosixPath("/")
                parts = list(target.parts[1:] if target.is_absolute() else target.parts) + parts
                continue
            if not host.exists():
                return None
            current = candidate
        host = self.root / current.relative_to("/")
        return host if host.exists() else None

    def file(self, path: str) -> Path | None:
        """The host path of a regular file at `path`; None when absent or its links loop."""
        try:
            host = self.resolve(path)
        except LinkLoop:
            return None
        return host if host is not None and host.is_file() else None

    def read_text(self, path: str) -> str | None:
        host = self.file(path)
        return None if host is None else host.read_text(encoding="utf-8", errors="replace")

    def glob(self, pattern: str) -> list[str]:
        """Paths (inside the root) matching a glob of ld.so.conf's `include`."""
        base = PurePosixPath(pattern)
        parent = self.resolve(str(base.parent))
        if parent is None or not parent.is_dir():
            return []
        return sorted(str(base.parent / p.name) for p in parent.glob(base.name))


@contextlib.contextmanager
def materialized(reference: str, platform: Platform | None) -> Iterator[RootFs]:
    """The root file system an image reference (or dir:PATH) names, unpacked for the block."""
    ref = parse_ref(reference)
    if ref.transport == "dir":
        root = Path(ref.target)
        if not root.is_dir():
            raise ImageRefError(f"{reference}: {root} is not a directory.")
        yield RootFs(root)
        return
    with scratch_dir("compat") as tmp:
        work = Path(tmp)
        if ref.transport == "oci":
            layout, name = OciLayout(Path(ref.target)), ref.name
        else:
            layout, name = skopeo.into_layout(ref, platform, work / "oci"), skopeo.COPIED
        manifest = select_manifest(layout, name, platform)
        layers = [layout.blob_path(layer["digest"]) for layer in manifest["layers"]]
        root = work / "root"
        root.mkdir()
        unpack_layers(layers, root)
        yield RootFs(root)
