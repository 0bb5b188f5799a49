"""Root file systems to look into: a directory as it is, an image unpacked once.

Paths are resolved inside the root the way the target's own kernel would see
them from a chroot (cairn.inroot).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from cairn.errors import ImageRefError
from cairn.inroot import LinkLoop, directory_lookup, resolve
from cairn.oci import skopeo
from cairn.oci.layout import OciLayout
from cairn.oci.reference import parse_ref
from cairn.oci.select import select_manifest
from cairn.oci.unpack import unpack_layers
from cairn.platforms import Platform
from cairn.scratch import scratch_dir


class RootDir:
    """A root file system laid out in a directory; its paths resolved by cairn.inroot."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lookup = directory_lookup(root)

    def resolve(self, path: str) -> Path | None:
        """The host path of `path` inside the root, links followed; None if it is not there.

        Raises LinkLoop past 40 links."""
        found = resolve(self._lookup, path)
        return None if found is None else self.root / found

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
def materialized(reference: str, platform: Platform | None) -> Iterator[RootDir]:
    """The root file system an image reference (or dir:PATH) names, unpacked for the block."""
    ref = parse_ref(reference)
    if ref.transport == "dir":
        root = Path(ref.target)
        if not root.is_dir():
            raise ImageRefError(f"{reference}: {root} is not a directory.")
        yield RootDir(root)
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
        yield RootDir(root)
